//! Eigenvalues of a real symmetric matrix, for the trace term of the closed-form W2
//! ([`crate::theory::gaussian`]): a Householder reduction to tridiagonal form, then the root-free
//! QL iteration of Pal, Walker and Kahan on the tridiagonal matrix ([`tridiagonal_eigenvalues`]).
//!
//! The reduction is picked by order n, each where it was fastest on the 2-core development
//! machine (docs/benchmarks.md):
//! - below [`TWO_STAGE_FROM`]: the unblocked reduction of [`unblocked`] (LAPACK `dsytd2` with
//!   each column's rank-2 update fused into the next matrix–vector product), which reads and
//!   writes the packed lower triangle once per column;
//! - from [`TWO_STAGE_FROM`]: the two-stage reduction of [`band`] (LAPACK `dsytrd_2stage`), to a
//!   band by matrix–matrix products, then to tridiagonal form by bulge chasing in cache.

pub mod band;
mod tridiagonal;
pub mod unblocked;

pub use tridiagonal::{MAX_ITERATIONS_PER_EIGENVALUE, NoConvergence, tridiagonal_eigenvalues};

use faer::{Mat, Par};

/// From this order on, the two-stage reduction ([`band`]) is used.
pub const TWO_STAGE_FROM: usize = 1280;

/// The eigenvalues, in nondecreasing order, of the symmetric matrix whose lower triangle is
/// stored in `a` (the strict upper triangle is ignored and may be overwritten); `par` is the
/// parallelism of the two-stage reduction.
pub fn symmetric_eigenvalues(a: Mat<f64>, par: Par) -> Result<Vec<f64>, NoConvergence> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "a square matrix");
    if n == 0 {
        return Ok(Vec::new());
    }
    let (diag, offdiag) = if n >= TWO_STAGE_FROM {
        band::tridiagonalise(a, band::BANDWIDTH, par)
    } else {
        unblocked::tridiagonalise(a.as_ref())
    };
    tridiagonal_eigenvalues(diag, offdiag)
}

/// `xᵀ y` with eight independent partial sums, so the additions pipeline and vectorise.
#[inline(always)]
pub(super) fn dot(x: &[f64], y: &[f64]) -> f64 {
    const LANES: usize = 8;
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let body = n - n % LANES;
    let mut partial = [0.0; LANES];
    for (xs, ys) in x[..body]
        .chunks_exact(LANES)
        .zip(y[..body].chunks_exact(LANES))
    {
        for l in 0..LANES {
            partial[l] += xs[l] * ys[l];
        }
    }
    let tail: f64 = x[body..].iter().zip(&y[body..]).map(|(a, b)| a * b).sum();
    partial.iter().sum::<f64>() + tail
}

/// Householder reflector `H = I − τ v vᵀ` with `H x = β e₁` for `x` = `column`; `column`
/// becomes `β e₁`, `v` (v₀ = 1) receives the reflector, τ is returned (0 when x is already β e₁).
#[inline(always)]
pub(super) fn reflector(column: &mut [f64], v: &mut [f64]) -> f64 {
    let (head, tail) = column.split_first_mut().expect("a non-empty column");
    let tau = faer::linalg::householder::make_householder_in_place(
        head,
        faer::ColMut::from_slice_mut(tail),
    )
    .tau
    .recip();
    v[0] = 1.0;
    v[1..].copy_from_slice(tail);
    tail.fill(0.0);
    tau
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &Mat<f64>) -> Vec<f64> {
        a.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
    }

    #[test]
    fn matches_faer_on_both_sides_of_the_two_stage_threshold() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for n in [
            1,
            2,
            3,
            4,
            5,
            127,
            128,
            129,
            383,
            600,
            TWO_STAGE_FROM - 1,
            TWO_STAGE_FROM + 5,
        ] {
            let b = crate::theory::gaussian::standard_normal_matrix(n, n, &mut rng);
            let a = Mat::from_fn(n, n, |i, j| b[(i, j)] + b[(j, i)]);
            let ours = symmetric_eigenvalues(a.clone(), Par::rayon(2)).unwrap();
            let theirs = reference(&a);
            let scale = theirs.iter().fold(1.0f64, |s, l| s.max(l.abs()));
            for (x, y) in ours.iter().zip(&theirs) {
                assert!((x - y).abs() <= 1e-12 * scale, "n = {n}: {x} vs {y}");
            }
        }
    }
}
