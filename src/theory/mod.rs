//! The theory core (paper Section 2 and Appendix A): exact quantities, no neural networks.
//!
//! - [`gaussian`]: Gaussian class conditionals, closed-form W2 and the conditional Wasserstein
//!   distance of Definition 2.
//! - [`linear`]: exact average robustness (Definition 1) of linear classifiers, the LDA and
//!   adversarially trained linear classifiers used to validate Theorem 1.

pub mod gaussian;
pub mod linear;
