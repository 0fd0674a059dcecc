//! The PCA-plus-mixture proxy: the training images projected on their top `dimensions`
//! principal components (eigenvectors of the pooled covariance), a Gaussian mixture with
//! diagonal covariances fitted per class in that space by EM, samples mapped back as
//! μ + V z. Few dimensions lose detail, so this is the poorer proxy.

use faer::{Mat, Side};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use super::gaussian::mean_and_covariance;
use crate::data::ImageDataset;
use crate::error::{Error, Result};

/// Principal axes of the pooled training images.
pub struct Pca {
    mean: Vec<f64>,
    /// d × k, orthonormal columns, largest variance first.
    axes: Mat<f64>,
}

const EM_ITERATIONS: usize = 60;
const VARIANCE_FLOOR: f64 = 1e-4;

impl Pca {
    /// The top `dimensions` principal axes of all of `train`.
    pub fn fit(train: &ImageDataset, dimensions: usize) -> Result<Self> {
        let d: usize = train.shape().iter().product();
        if dimensions == 0 || dimensions > d {
            return Err(Error::invalid(
                "dimensions",
                format!("between 1 and {d}, got {dimensions}"),
            ));
        }
        let x = Mat::from_fn(train.len(), d, |r, c| {
            train.pixels()[r * d + c] as f64 / 255.0
        });
        let (mean, cov) = mean_and_covariance(&x);
        let evd = cov.self_adjoint_eigen(Side::Lower).map_err(|e| {
            Error::invalid("pca", format!("an eigendecomposition, which failed: {e:?}"))
        })?;
        // Eigenvalues ascend: the last `dimensions` columns, reversed.
        let u = evd.U();
        let axes = Mat::from_fn(d, dimensions, |i, j| u[(i, d - 1 - j)]);
        Ok(Pca { mean, axes })
    }

    fn project(&self, x: &Mat<f64>) -> Mat<f64> {
        let centred = Mat::from_fn(x.nrows(), x.ncols(), |r, c| x[(r, c)] - self.mean[c]);
        centred * &self.axes
    }

    fn reconstruct(&self, z: &Mat<f64>) -> Mat<f64> {
        let x = z * self.axes.transpose();
        Mat::from_fn(x.nrows(), x.ncols(), |r, c| x[(r, c)] + self.mean[c])
    }
}

/// A diagonal Gaussian mixture.
struct Mixture {
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    variances: Vec<Vec<f64>>,
}

fn log_density(z: &[f64], mean: &[f64], var: &[f64]) -> f64 {
    z.iter()
        .zip(mean)
        .zip(var)
        .map(|((x, m), v)| -0.5 * ((x - m).powi(2) / v + v.ln() + std::f64::consts::TAU.ln()))
        .sum()
}

/// EM for a `components`-mixture on the rows of `z`, started from randomly chosen rows.
fn fit_mixture<R: Rng + ?Sized>(z: &Mat<f64>, components: usize, rng: &mut R) -> Mixture {
    let (n, k) = (z.nrows(), z.ncols());
    let m = components.min(n);
    let row = |r: usize| (0..k).map(|c| z[(r, c)]).collect::<Vec<f64>>();
    let pooled: Vec<f64> = (0..k)
        .map(|c| (0..n).map(|r| z[(r, c)].powi(2)).sum::<f64>() / n as f64)
        .collect();
    let mut mixture = Mixture {
        weights: vec![1.0 / m as f64; m],
        means: (0..m).map(|_| row(rng.random_range(0..n))).collect(),
        variances: vec![pooled.iter().map(|v| v.max(VARIANCE_FLOOR)).collect(); m],
    };
    let mut resp = vec![vec![0.0; m]; n];
    for _ in 0..EM_ITERATIONS {
        for (r, resp_r) in resp.iter_mut().enumerate() {
            let zr = row(r);
            let logs: Vec<f64> = (0..m)
                .map(|j| {
                    mixture.weights[j].ln()
                        + log_density(&zr, &mixture.means[j], &mixture.variances[j])
                })
                .collect();
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logs.iter().map(|l| (l - top).exp()).sum();
            for j in 0..m {
                resp_r[j] = (logs[j] - top).exp() / total;
            }
        }
        for j in 0..m {
            let mass: f64 = resp.iter().map(|r| r[j]).sum::<f64>().max(1e-12);
            mixture.weights[j] = mass / n as f64;
            mixture.means[j] = (0..k)
                .map(|c| (0..n).map(|r| resp[r][j] * z[(r, c)]).sum::<f64>() / mass)
                .collect();
            mixture.variances[j] = (0..k)
                .map(|c| {
                    ((0..n)
                        .map(|r| resp[r][j] * (z[(r, c)] - mixture.means[j][c]).powi(2))
                        .sum::<f64>()
                        / mass)
                        .max(VARIANCE_FLOOR)
                })
                .collect();
        }
    }
    mixture
}

/// `n` samples for one class: its rows of `real` projected, a mixture fitted, samples mapped back.
pub fn sample<R: Rng + ?Sized>(
    pca: &Pca,
    real: &Mat<f64>,
    components: usize,
    n: usize,
    rng: &mut R,
) -> Result<Mat<f64>> {
    if components == 0 {
        return Err(Error::invalid("components", "at least 1"));
    }
    let z = pca.project(real);
    let mixture = fit_mixture(&z, components, rng);
    let k = z.ncols();
    let mut draws = Mat::<f64>::zeros(n, k);
    for r in 0..n {
        let u: f64 = rng.random();
        let mut j = 0;
        let mut acc = mixture.weights[0];
        while acc < u && j + 1 < mixture.weights.len() {
            j += 1;
            acc += mixture.weights[j];
        }
        for c in 0..k {
            let e: f64 = StandardNormal.sample(rng);
            draws[(r, c)] = mixture.means[j][c] + mixture.variances[j][c].sqrt() * e;
        }
    }
    Ok(pca.reconstruct(&draws))
}
