//! The theory core (paper Section 2 and Appendix A): exact quantities, no neural networks.
//!
//! - [`gaussian`]: Gaussian class conditionals, closed-form W2 and the conditional Wasserstein
//!   distance of Definition 2 (W2's trace term from the `proxyrobust-kernels` crate).
//! - [`linear`]: exact average robustness (Definition 1) of linear classifiers, the LDA and
//!   adversarially trained linear classifiers used to validate Theorem 1.
//! - [`norm`]: the ℓ1, ℓ2, ℓ∞ metrics and their duals.
//! - [`transport`]: exact optimal transport between empirical measures, empirical cwd.
//! - [`mixture`]: Theorem 6, cwd to a mixture of real and proxy data.
//! - [`sphere`]: concentric uniform spheres, where Theorem 2 is an equality.
//! - [`discrimination`]: robust discrimination accuracy and the ARC metric.

pub mod discrimination;
pub mod gaussian;
pub mod linear;
pub mod mixture;
pub mod norm;
pub mod sphere;
pub mod transport;
