//! Randomized smoothing (Cohen, Rosenfeld & Kolter, 2019), the certification behind the paper's
//! certified-robustness results (Section 3.1.2, Table 5, Figure 2).
//!
//! The smoothed classifier of a base classifier f is g(x) = argmax_c Pr[f(x + δ) = c],
//! δ ~ N(0, σ²I), with the noise added in [0, 1] pixel space (before any normalisation inside the
//! model). If the top class has probability at least p_A > ½, g is constant on the ℓ2 ball of
//! radius σ·Φ⁻¹(p_A) (Cohen et al., Theorem 1). [`Smooth::certify`] estimates p_A with a one-sided
//! Clopper–Pearson bound, [`Smooth::predict`] abstains unless a two-sided binomial test separates
//! the top two classes. The statistics here are exact binomial and Beta computations (statrs);
//! the counts come from noisy forward passes of the base classifier on its device.

mod curve;
#[cfg(feature = "torch")]
mod run;

pub use curve::{CertifiedPoint, certified_accuracy};
#[cfg(feature = "torch")]
pub use run::{
    CertifyFlags, CertifyOutcome, CertifySummary, Mode, SampleRow, curve_radii, run, smooth_points,
    summarise,
};

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, Binomial, ContinuousCDF, DiscreteCDF, Normal};

use crate::config::positive_finite;
use crate::error::{Error, Result};

/// The Monte-Carlo settings of CERTIFY and PREDICT. Defaults are the paper's (n0 = 100,
/// n = 10,000, α = 0.001); locuslab/smoothing certifies with n = 100,000.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothingSettings {
    /// Noise level σ of δ ~ N(0, σ²I), in [0, 1] pixel units.
    pub sigma: f64,
    /// Noisy samples that select the top class (CERTIFY).
    #[serde(default = "default_n0")]
    pub n0: usize,
    /// Noisy samples that estimate its probability (CERTIFY) or vote (PREDICT).
    #[serde(default = "default_n")]
    pub n: usize,
    /// Failure probability of the certificate / of a non-abstained prediction.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Noisy images per forward pass.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_n0() -> usize {
    100
}
fn default_n() -> usize {
    10_000
}
fn default_alpha() -> f64 {
    0.001
}
fn default_batch() -> usize {
    1_000
}

impl SmoothingSettings {
    /// Range checks; errors name the field (`sigma`, `n0`, `n`, `alpha`, `batch`).
    pub fn validate(&self) -> Result<()> {
        positive_finite("sigma", self.sigma)?;
        probability_level("alpha", self.alpha)?;
        for (field, value) in [("n0", self.n0), ("n", self.n), ("batch", self.batch)] {
            if value == 0 {
                return Err(Error::invalid(field, "at least 1"));
            }
        }
        if self.n0 > MAX_SAMPLES || self.n > MAX_SAMPLES {
            return Err(Error::invalid(
                "n",
                format!("at most {MAX_SAMPLES} noisy samples per image"),
            ));
        }
        if self.batch > self.n.max(self.n0) {
            return Err(Error::invalid(
                "batch",
                format!(
                    "at most max(n0, n) = {} noisy images per forward pass, got {}",
                    self.n.max(self.n0),
                    self.batch
                ),
            ));
        }
        Ok(())
    }
}

/// `alpha` lies strictly between 0 and 1.
fn probability_level(field: &str, alpha: f64) -> Result<()> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("a level strictly between 0 and 1, got {alpha}"),
        ))
    }
}

/// Noisy samples per image beyond which a count no longer fits the statistics' f64 exactness.
const MAX_SAMPLES: usize = 1 << 40;

/// One-sided (1 − α) Clopper–Pearson lower confidence bound of a binomial proportion from `k`
/// successes in `n` trials: the α-quantile of Beta(k, n − k + 1), and 0 for k = 0.
/// (For k = n this is α^(1/n).) statsmodels' `proportion_confint(k, n, alpha=2α,
/// method="beta")[0]` is the same number.
pub fn clopper_pearson_lower(k: u64, n: u64, alpha: f64) -> Result<f64> {
    if n == 0 || k > n {
        return Err(Error::invalid(
            "counts",
            format!("0 ≤ k ≤ n and n ≥ 1, got k = {k}, n = {n}"),
        ));
    }
    probability_level("alpha", alpha)?;
    if k == 0 {
        return Ok(0.0);
    }
    if k == n {
        return Ok(alpha.powf(1.0 / n as f64));
    }
    let beta = Beta::new(k as f64, (n - k + 1) as f64)
        .map_err(|e| Error::invalid("counts", e.to_string()))?;
    Ok(beta.inverse_cdf(alpha))
}

/// Two-sided p-value of the exact binomial test of `k` successes in `n` trials against p = ½:
/// min(1, 2·Pr[X ≤ min(k, n − k)]) for X ~ Bin(n, ½) (scipy's `binomtest(k, n).pvalue`).
pub fn binomial_test_half(k: u64, n: u64) -> Result<f64> {
    if n == 0 || k > n {
        return Err(Error::invalid(
            "counts",
            format!("0 ≤ k ≤ n and n ≥ 1, got k = {k}, n = {n}"),
        ));
    }
    let tail = Binomial::new(0.5, n)
        .map_err(|e| Error::invalid("counts", e.to_string()))?
        .cdf(k.min(n - k));
    Ok((2.0 * tail).min(1.0))
}

/// The certified ℓ2 radius σ·Φ⁻¹(p_A) of a smoothed classifier whose top class has
/// probability at least `p_lower` (Cohen et al., Theorem 1); `None` (abstain) when p_A ≤ ½.
pub fn certified_radius(sigma: f64, p_lower: f64) -> Option<f64> {
    (p_lower > 0.5).then(|| {
        let normal = Normal::standard();
        sigma * normal.inverse_cdf(p_lower)
    })
}

/// What CERTIFY returns for one input: the class and the radius it is certified within, or an
/// abstention.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Certificate {
    Certified { class: i64, radius: f64 },
    Abstain,
}

/// CERTIFY's decision from the selected class `top` and its count `k` among `n` estimation
/// samples.
pub fn certify_from_counts(
    top: i64,
    k: u64,
    n: u64,
    settings: &SmoothingSettings,
) -> Result<Certificate> {
    let p_lower = clopper_pearson_lower(k, n, settings.alpha)?;
    Ok(match certified_radius(settings.sigma, p_lower) {
        Some(radius) => Certificate::Certified { class: top, radius },
        None => Certificate::Abstain,
    })
}

/// PREDICT's decision from the vote counts of every class: the top class unless the binomial
/// test of the top two counts has p-value above α (Cohen et al., Algorithm PREDICT).
pub fn predict_from_counts(counts: &[u64], alpha: f64) -> Result<Option<i64>> {
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let (first, second) = match order.as_slice() {
        [a, b, ..] => (*a, counts[*b]),
        [a] => (*a, 0),
        [] => return Err(Error::invalid("counts", "at least one class")),
    };
    let (na, nb) = (counts[first], second);
    if na + nb == 0 {
        return Ok(None);
    }
    Ok((binomial_test_half(na, na + nb)? <= alpha).then_some(first as i64))
}

#[cfg(feature = "torch")]
pub use with_torch::Smooth;

#[cfg(feature = "torch")]
mod with_torch {
    use tch::nn::ModuleT;
    use tch::{Kind, Tensor};

    use super::{Certificate, SmoothingSettings, certify_from_counts, predict_from_counts};
    use crate::error::Result;

    /// The smoothed classifier g of a base classifier `base` on [0, 1] inputs.
    pub struct Smooth<'a, M: ModuleT + ?Sized> {
        pub base: &'a M,
        pub classes: i64,
        pub settings: SmoothingSettings,
    }

    impl<M: ModuleT + ?Sized> Smooth<'_, M> {
        /// Class counts of f(x + δ) over `num` noisy copies of the single input `x` (C, H, W),
        /// drawn `settings.batch` at a time on x's device with the current tch seed. The
        /// counts stay on the device until the end: one device-to-host copy per call.
        pub fn counts(&self, x: &Tensor, num: usize) -> Vec<u64> {
            let device = x.device();
            let mut counts = Tensor::zeros([self.classes], (Kind::Int64, device));
            let mut left = num;
            tch::no_grad(|| {
                while left > 0 {
                    let b = left.min(self.settings.batch) as i64;
                    let mut shape = vec![b];
                    shape.extend(x.size());
                    let noise = Tensor::randn(shape.as_slice(), (Kind::Float, device));
                    let noisy = noise * self.settings.sigma + x.unsqueeze(0);
                    let votes = self
                        .base
                        .forward_t(&noisy, false)
                        .argmax(-1, false)
                        .bincount::<Tensor>(None, self.classes);
                    counts += votes;
                    left -= b as usize;
                }
            });
            Vec::<i64>::try_from(counts)
                .expect("counts are an int64 vector")
                .into_iter()
                .map(|c| c as u64)
                .collect()
        }

        /// CERTIFY (Cohen et al.): the top class of n0 noisy votes, its count among n fresh
        /// ones, the one-sided Clopper–Pearson lower bound p_A at level α, radius σ·Φ⁻¹(p_A);
        /// abstain when p_A ≤ ½.
        pub fn certify(&self, x: &Tensor) -> Result<Certificate> {
            let selection = self.counts(x, self.settings.n0);
            let top = argmax(&selection);
            let k = self.counts(x, self.settings.n)[top as usize];
            certify_from_counts(top, k, self.settings.n as u64, &self.settings)
        }

        /// PREDICT (Cohen et al.): the top class of n noisy votes, or `None` (abstain) when the
        /// two-sided binomial test of the top two counts has p-value above α.
        pub fn predict(&self, x: &Tensor) -> Result<Option<i64>> {
            predict_from_counts(&self.counts(x, self.settings.n), self.settings.alpha)
        }
    }

    /// The first index of the largest count.
    fn argmax(counts: &[u64]) -> i64 {
        let best = counts.iter().copied().max().unwrap_or(0);
        counts.iter().position(|&c| c == best).unwrap_or(0) as i64
    }
}
