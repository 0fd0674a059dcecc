//! The class-conditional Gaussian proxy: N(μ_y, Σ_y) with the sample mean and the full sample
//! covariance of class y (singular for images — constant border pixels — which
//! [`crate::theory::gaussian::Gaussian`] samples exactly through its eigen-factor).

use faer::Mat;
use rand::Rng;

use crate::error::Result;
use crate::theory::gaussian::Gaussian;

/// Mean (d) and unbiased covariance (d × d) of the rows of `x`.
pub fn mean_and_covariance(x: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
    let (n, d) = (x.nrows(), x.ncols());
    let mean: Vec<f64> = (0..d)
        .map(|c| (0..n).map(|r| x[(r, c)]).sum::<f64>() / n as f64)
        .collect();
    let centred = Mat::from_fn(n, d, |r, c| x[(r, c)] - mean[c]);
    let gram = centred.transpose() * &centred;
    let scale = 1.0 / (n as f64 - 1.0);
    // Exactly symmetric, as Gaussian::new checks.
    let cov = Mat::from_fn(d, d, |i, j| 0.5 * scale * (gram[(i, j)] + gram[(j, i)]));
    (mean, cov)
}

/// `n` draws from the Gaussian fitted to the rows of `real`.
pub fn sample<R: Rng + ?Sized>(real: &Mat<f64>, n: usize, rng: &mut R) -> Result<Mat<f64>> {
    let (mean, cov) = mean_and_covariance(real);
    Ok(Gaussian::new(mean, cov)?.sample(n, rng))
}
