//! Eigenvalues of a real symmetric matrix, and the sum of their square roots that the trace
//! term of the closed-form W2 needs: a Householder reduction to
//! tridiagonal form, then the root-free QL iteration of Pal, Walker and Kahan on the tridiagonal
//! matrix ([`tridiagonal_eigenvalues`]), or, for `Σ √λ` of a positive definite matrix, a
//! quadrature of its Stieltjes transform in O(n) per point ([`trace_sqrt`]).
//!
//! The reduction is picked by order n, each where it was fastest on the 2-core development
//! machine:
//! - below [`TWO_STAGE_FROM`]: the unblocked reduction of [`unblocked`] (LAPACK `dsytd2` with
//!   each column's rank-2 update fused into the next matrix–vector product), which reads and
//!   writes the packed lower triangle once per column;
//! - from [`TWO_STAGE_FROM`]: the two-stage reduction of [`band`] (LAPACK `dsytrd_2stage`), to a
//!   band by matrix–matrix products, then to tridiagonal form by bulge chasing in cache.

mod band;
mod trace_sqrt;
mod tridiagonal;
mod unblocked;

pub use tridiagonal::{NoConvergence, tridiagonal_eigenvalues};

use faer::prelude::Reborrow;
use faer::{MatMut, Par};

/// From this order on, the two-stage reduction ([`band`]) is used.
pub const TWO_STAGE_FROM: usize = 1280;

#[cfg(test)]
/// The eigenvalues, in nondecreasing order, of the symmetric matrix whose lower triangle is
/// stored in `a` (the strict upper triangle is ignored and may be overwritten); `par` is the
/// parallelism of the two-stage reduction.
pub fn symmetric_eigenvalues(a: MatMut<'_, f64>, par: Par) -> Result<Vec<f64>, NoConvergence> {
    let (diag, offdiag) = tridiagonalise(a, par);
    tridiagonal_eigenvalues(diag, offdiag)
}

/// `Σ √max(λᵢ, 0)` over the eigenvalues of the symmetric matrix whose lower triangle is stored
/// in `a` (as in [`symmetric_eigenvalues`]): by quadrature on its tridiagonal form
/// ([`trace_sqrt`]) when that is numerically positive definite, from the eigenvalues otherwise.
pub fn symmetric_trace_sqrt(a: MatMut<'_, f64>, par: Par) -> Result<f64, NoConvergence> {
    let (diag, offdiag) = tridiagonalise(a, par);
    match trace_sqrt::trace_sqrt(&diag, &offdiag) {
        Some(sum) => Ok(sum),
        None => Ok(tridiagonal_eigenvalues(diag, offdiag)?
            .iter()
            .map(|l| l.max(0.0).sqrt())
            .sum()),
    }
}

/// Diagonal and off-diagonal of a tridiagonal matrix orthogonally similar to the symmetric
/// matrix whose lower triangle is stored in `a`, by the reduction that is fastest at its order.
fn tridiagonalise(a: MatMut<'_, f64>, par: Par) -> (Vec<f64>, Vec<f64>) {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "a square matrix");
    if n == 0 {
        (Vec::new(), Vec::new())
    } else if n >= TWO_STAGE_FROM {
        band::tridiagonalise(a, band::BANDWIDTH, par)
    } else {
        unblocked::tridiagonalise(a.rb())
    }
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
    use faer::Mat;

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
            let b = crate::test_support::standard_normal_matrix(n, n, &mut rng);
            let a = Mat::from_fn(n, n, |i, j| b[(i, j)] + b[(j, i)]);
            let ours = symmetric_eigenvalues(a.clone().as_mut(), Par::rayon(2)).unwrap();
            let theirs = reference(&a);
            let scale = theirs.iter().fold(1.0f64, |s, l| s.max(l.abs()));
            for (x, y) in ours.iter().zip(&theirs) {
                assert!((x - y).abs() <= 1e-12 * scale, "n = {n}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn trace_sqrt_takes_the_quadrature_or_the_eigenvalues_and_agrees_with_faer() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let expected =
            |a: &Mat<f64>| -> f64 { reference(a).iter().map(|l| l.max(0.0).sqrt()).sum() };
        for n in [1, 2, 128, TWO_STAGE_FROM + 5] {
            let b = crate::test_support::standard_normal_matrix(n, n, &mut rng);
            // Positive definite (the quadrature), then of rank n/2 with round-off below zero
            // and indefinite (the eigenvalues).
            let mut definite = faer::Scale(1.0 / n as f64) * (&b * b.transpose());
            (0..n).for_each(|i| definite[(i, i)] += 0.1);
            let half = b.subcols(0, n.div_ceil(2));
            let singular = half * half.transpose();
            let indefinite = Mat::from_fn(n, n, |i, j| b[(i, j)] + b[(j, i)]);
            for (what, a) in [
                ("definite", definite),
                ("singular", singular),
                ("indefinite", indefinite),
            ] {
                let ours = symmetric_trace_sqrt(a.clone().as_mut(), Par::rayon(2)).unwrap();
                let theirs = expected(&a);
                let scale = reference(&a)
                    .iter()
                    .fold(1.0f64, |s, l| s.max(l.abs()))
                    .sqrt();
                // A zero eigenvalue comes out as ± round-off, c n ε λ_max, whose square root
                // (or zero, when negative) is all any method can give for it.
                let tolerance = if what == "singular" {
                    n as f64 * (n as f64 * f64::EPSILON).sqrt()
                } else {
                    1e-12 * n as f64
                };
                assert!(
                    (ours - theirs).abs() <= tolerance * scale,
                    "n = {n}, {what}: {ours} vs {theirs}"
                );
            }
        }
    }
}
