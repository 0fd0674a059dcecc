//! The interpolation proxy: a random real image x_i of the class, one of its `neighbours`
//! nearest same-class images x_j (Euclidean distance in pixel space), and λ ~ U(0, 1):
//! x̃ = λ x_i + (1 − λ) x_j. Close to the real data, so a good proxy.

use faer::Mat;
use rand::{Rng, RngExt};

use crate::error::{Error, Result};

/// For each row of `x`, the indices of its `k` nearest other rows.
pub fn nearest_neighbours(x: &Mat<f64>, k: usize) -> Vec<Vec<usize>> {
    let n = x.nrows();
    let gram = x * x.transpose();
    (0..n)
        .map(|i| {
            let mut others: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (gram[(i, i)] + gram[(j, j)] - 2.0 * gram[(i, j)], j))
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0));
            others.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

/// `n` interpolations between rows of `real` and their nearest neighbours.
pub fn sample<R: Rng + ?Sized>(
    real: &Mat<f64>,
    neighbours: usize,
    n: usize,
    rng: &mut R,
) -> Result<Mat<f64>> {
    if neighbours == 0 {
        return Err(Error::invalid("neighbours", "at least 1"));
    }
    let near = nearest_neighbours(real, neighbours);
    let d = real.ncols();
    let mut out = Mat::<f64>::zeros(n, d);
    for r in 0..n {
        let i = rng.random_range(0..real.nrows());
        let j = near[i][rng.random_range(0..near[i].len())];
        let lambda: f64 = rng.random();
        for c in 0..d {
            out[(r, c)] = lambda * real[(i, c)] + (1.0 - lambda) * real[(j, c)];
        }
    }
    Ok(out)
}
