//! Dense kernels behind proxyrobust's closed-form Wasserstein-2 distance between Gaussians
//! (Givens & Shortt 1984; the paper's Appendix A.5 uses it for Figure 4):
//!
//! ```text
//! W2² = ‖m1 − m2‖² + tr S1 + tr S2 − 2 tr (S2^½ S1 S2^½)^½
//! ```
//!
//! The only expensive term is `tr (S2^½ S1 S2^½)^½ = Σ √λᵢ(G)` for the symmetric positive
//! semidefinite Gram matrix `G` the caller forms from the two covariances' factors. This crate
//! computes that sum, [`trace_sqrt`], and the in-place symmetrisation the route needs,
//! [`add_transpose`]. Everything else is internal:
//!
//! - a Householder reduction to tridiagonal form, unblocked (LAPACK `dsytd2` with fused
//!   updates) below [`TWO_STAGE_FROM`] and two-stage (to a band by matrix products, then bulge
//!   chasing) from it;
//! - `Σ √λ` of the tridiagonal matrix by the trapezoidal rule on its Stieltjes transform when it
//!   is positive definite, from its eigenvalues (root-free QL) otherwise;
//! - the 4 × 4 register-transposed walk of `M ← c (M + Mᵀ)`.
//!
//! faer's dense `self_adjoint_eigenvalues` is the reference every kernel is tested against
//! (`tests/differential.rs`).

mod eigen;
mod transpose;

use faer::{MatMut, Par};

pub use eigen::{NoConvergence, TWO_STAGE_FROM};
pub use transpose::{Asymmetry, add_transpose};

/// `Σ √max(λᵢ, 0)` over the eigenvalues of the symmetric matrix whose lower triangle is stored
/// in `a` (the strict upper triangle is ignored; the whole of `a` is overwritten). `par` is the
/// parallelism of the two-stage reduction used from order [`TWO_STAGE_FROM`].
///
/// Negative eigenvalues (round-off of zeros in a positive semidefinite matrix) contribute 0.
pub fn trace_sqrt(a: MatMut<'_, f64>, par: Par) -> Result<f64, NoConvergence> {
    eigen::symmetric_trace_sqrt(a, par)
}

#[cfg(test)]
mod test_support {
    use faer::Mat;
    use rand::Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// An n × d matrix of independent standard normal draws, row by row.
    pub fn standard_normal_matrix<R: Rng + ?Sized>(n: usize, d: usize, rng: &mut R) -> Mat<f64> {
        let mut z = Mat::<f64>::zeros(n, d);
        for i in 0..n {
            for j in 0..d {
                z[(i, j)] = StandardNormal.sample(rng);
            }
        }
        z
    }
}
