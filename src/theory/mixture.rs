//! Combining real and proxy data (paper Appendix A.3, Theorem 6).
//!
//! With identical label distributions, the class conditionals of the mixture
//! `D^ = p·D + (1 − p)·D~` are `p·D|y + (1 − p)·D~|y`, and the coupling that leaves the `p`
//! share in place and moves the rest by the optimal transport between `D|y` and `D~|y` shows
//! `cwd(D, D^) ≤ (1 − p)·cwd(D, D~)` (for the W1 cost of Definition 2; with W2 the same
//! coupling only gives `√(1 − p)`).

use serde::Serialize;

use super::norm::Norm;
use super::transport::{
    LabeledCloud, check_same_class_probs, conditional_wasserstein_by,
    empirical_conditional_wasserstein,
};
use crate::error::{Error, Result};

/// Both sides of Theorem 6 on empirical measures.
#[derive(Clone, Debug, Serialize)]
pub struct MixtureBound {
    /// `p`, the share of real data in the mixture.
    pub p: f64,
    /// `cwd(Ŝ, p·Ŝ + (1 − p)·Ŝ~)` by exact weighted OT.
    pub cwd_mixture: f64,
    /// `cwd(Ŝ, Ŝ~)`.
    pub cwd_proxy: f64,
    /// `(1 − p)·cwd(Ŝ, Ŝ~)`.
    pub bound: f64,
}

/// Theorem 6 checked exactly on labeled clouds with identical class proportions, W1 in `metric`.
pub fn mixture_bound(
    real: &LabeledCloud,
    proxy: &LabeledCloud,
    p: f64,
    metric: Norm,
) -> Result<MixtureBound> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::invalid(
            "p",
            format!("a mixture weight in [0, 1], got {p}"),
        ));
    }
    let probs = real.class_probs();
    check_same_class_probs(&probs, &proxy.class_probs())?;
    let cwd_proxy = empirical_conditional_wasserstein(real, proxy, 1, metric)?.cwd;
    let mixed = |y: usize| match (real.class(y), proxy.class(y)) {
        (Some(a), Some(b)) => Some(
            a.mixture(&b, p)
                .expect("validated measures of one dimension"),
        ),
        _ => None,
    };
    let cwd_mixture = conditional_wasserstein_by(&probs, |y| real.class(y), mixed, 1, metric)?.cwd;
    Ok(MixtureBound {
        p,
        cwd_mixture,
        cwd_proxy,
        bound: (1.0 - p) * cwd_proxy,
    })
}
