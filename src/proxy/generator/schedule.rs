//! The forward (noising) process of DDPM (Ho et al. 2020, Section 2):
//!
//! ```text
//! q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I),   ᾱ_t = Π_{s ≤ t} (1 − β_s),
//! q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I),
//!   μ̃_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · x_t,
//!   β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t,
//! ```
//!
//! with steps t = 0 … T − 1 here (ᾱ_{−1} = 1), and the DDIM update (Song et al. 2021, Eq. 12)
//! between any two steps of a subsequence.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How β_t grows over the T steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    /// β_t linear from 1e-4 to 0.02 for T = 1000 (Ho et al.), scaled by 1000/T.
    #[default]
    Linear,
    /// ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008, β_t ≤ 0.999 (Nichol &
    /// Dhariwal 2021).
    Cosine,
}

/// β_t, α_t = 1 − β_t and ᾱ_t for t = 0 … T − 1.
#[derive(Clone, Debug)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    pub alpha_bars: Vec<f64>,
}

/// The most diffusion steps a schedule has (Ho et al. use 1,000; the tables are held in memory).
pub const MAX_TIMESTEPS: usize = 100_000;

impl NoiseSchedule {
    /// The schedule of `kind` over `steps` steps (at least 2).
    pub fn new(kind: BetaSchedule, steps: usize) -> Result<Self> {
        if !(2..=MAX_TIMESTEPS).contains(&steps) {
            return Err(Error::invalid(
                "timesteps",
                format!("between 2 and {MAX_TIMESTEPS}, got {steps}"),
            ));
        }
        let t_max = steps as f64;
        let betas: Vec<f64> = match kind {
            BetaSchedule::Linear => {
                let scale = 1000.0 / t_max;
                let (first, last) = (scale * 1e-4, scale * 0.02);
                (0..steps)
                    .map(|t| first + (last - first) * t as f64 / (t_max - 1.0))
                    .collect()
            }
            BetaSchedule::Cosine => {
                let f = |t: f64| {
                    ((t / t_max + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                        .cos()
                        .powi(2)
                };
                (0..steps)
                    .map(|t| (1.0 - f(t as f64 + 1.0) / f(t as f64)).min(0.999))
                    .collect()
            }
        };
        if betas.iter().any(|&b| !(b > 0.0 && b < 1.0)) {
            return Err(Error::invalid(
                "timesteps",
                format!(
                    "enough steps that every β_t lies in (0, 1) ({kind:?} over {steps} steps does not)"
                ),
            ));
        }
        let alpha_bars = betas
            .iter()
            .scan(1.0, |product, beta| {
                *product *= 1.0 - beta;
                Some(*product)
            })
            .collect();
        Ok(NoiseSchedule { betas, alpha_bars })
    }

    /// T, the number of steps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Never: a schedule has at least two steps.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// ᾱ_{t−1}, with ᾱ_{−1} = 1.
    pub fn alpha_bar_before(&self, t: usize) -> f64 {
        if t == 0 { 1.0 } else { self.alpha_bars[t - 1] }
    }

    /// The coefficients (of x_0, of x_t) of the posterior mean μ̃_t.
    pub fn posterior_mean_coefficients(&self, t: usize) -> (f64, f64) {
        let (beta, alpha_bar, before) =
            (self.betas[t], self.alpha_bars[t], self.alpha_bar_before(t));
        (
            before.sqrt() * beta / (1.0 - alpha_bar),
            (1.0 - beta).sqrt() * (1.0 - before) / (1.0 - alpha_bar),
        )
    }

    /// The posterior variance β̃_t.
    pub fn posterior_variance(&self, t: usize) -> f64 {
        (1.0 - self.alpha_bar_before(t)) / (1.0 - self.alpha_bars[t]) * self.betas[t]
    }

    /// `count` steps of DDIM's subsequence, evenly spaced and descending from T − 1 to 0
    /// (`count` = T gives every step).
    pub fn subsequence(&self, count: usize) -> Result<Vec<usize>> {
        let t = self.len();
        if count == 0 || count > t {
            return Err(Error::invalid(
                "sampling_steps",
                format!("between 1 and timesteps = {t}, got {count}"),
            ));
        }
        if count == 1 {
            return Ok(vec![t - 1]);
        }
        let mut steps: Vec<usize> = (0..count)
            .map(|i| ((t - 1) as f64 * i as f64 / (count - 1) as f64).round() as usize)
            .collect();
        steps.dedup();
        steps.reverse();
        Ok(steps)
    }

    /// DDIM's coefficients for the move from step `t` to `before` (`None`: to the data): with
    /// x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, x_before = √ᾱ_b x̂_0 + √(1 − ᾱ_b − σ²) ε̂ + σ z, where
    /// σ = η √((1 − ᾱ_b)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_b). Returns (√ᾱ_b, √(1 − ᾱ_b − σ²), σ).
    pub fn ddim_coefficients(&self, t: usize, before: Option<usize>, eta: f64) -> (f64, f64, f64) {
        let alpha_bar = self.alpha_bars[t];
        let alpha_before = before.map_or(1.0, |b| self.alpha_bars[b]);
        let sigma = eta
            * ((1.0 - alpha_before) / (1.0 - alpha_bar)).sqrt()
            * (1.0 - alpha_bar / alpha_before).max(0.0).sqrt();
        (
            alpha_before.sqrt(),
            (1.0 - alpha_before - sigma * sigma).max(0.0).sqrt(),
            sigma,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ᾱ_t, μ̃_t's coefficients and β̃_t by hand for a 3-step schedule with β = 0.1, 0.2, 0.3;
    /// ᾱ_T of Ho et al.'s schedule from numpy (`np.prod(1 - np.linspace(1e-4, 0.02, 1000))` =
    /// 4.035829765375676e-05).
    #[test]
    fn closed_forms_match_hand_computed_values() {
        let s = NoiseSchedule {
            betas: vec![0.1, 0.2, 0.3],
            alpha_bars: vec![0.9, 0.72, 0.504],
        };
        // μ̃_2: √0.72 · 0.3 / 0.496 and √0.7 · 0.28 / 0.496.
        let (c0, ct) = s.posterior_mean_coefficients(2);
        assert!((c0 - 0.72f64.sqrt() * 0.3 / 0.496).abs() < 1e-15);
        assert!((ct - 0.7f64.sqrt() * 0.28 / 0.496).abs() < 1e-15);
        assert!((s.posterior_variance(2) - 0.28 / 0.496 * 0.3).abs() < 1e-15);
        // At t = 0 the posterior is the data itself: μ̃_0 = x_0, β̃_0 = 0.
        let (c0, ct) = s.posterior_mean_coefficients(0);
        assert!((c0 - 1.0).abs() < 1e-15 && ct == 0.0, "{c0} {ct}");
        assert_eq!(s.posterior_variance(0), 0.0);
        let linear = NoiseSchedule::new(BetaSchedule::Linear, 1000).unwrap();
        assert!((linear.betas[0] - 1e-4).abs() < 1e-18 && (linear.betas[999] - 0.02).abs() < 1e-15);
        let product: f64 = linear.betas[..10].iter().map(|b| 1.0 - b).product();
        assert!((linear.alpha_bars[9] - product).abs() < 1e-15);
        // Ho et al.'s schedule ends with almost pure noise: ᾱ_T ≈ 4.04e-5.
        assert!((linear.alpha_bars[999] - 4.035829765375676e-05).abs() < 1e-15 * 1e-5 * 1e3);
        let cosine = NoiseSchedule::new(BetaSchedule::Cosine, 1000).unwrap();
        assert!(cosine.betas.iter().all(|&b| b > 0.0 && b <= 0.999));
        assert!(cosine.alpha_bars.windows(2).all(|w| w[1] < w[0]));
    }

    /// DDIM with η = 0 is deterministic (σ = 0); with η = 1 its σ² is DDPM's β̃_t between
    /// neighbouring steps; the subsequence runs from T − 1 down to 0.
    #[test]
    fn ddim_coefficients_and_subsequence() {
        let s = NoiseSchedule::new(BetaSchedule::Linear, 100).unwrap();
        assert_eq!(s.ddim_coefficients(50, Some(49), 0.0).2, 0.0);
        let (_, _, sigma) = s.ddim_coefficients(50, Some(49), 1.0);
        assert!((sigma * sigma - s.posterior_variance(50)).abs() < 1e-15);
        let (a, b, sigma) = s.ddim_coefficients(0, None, 0.0);
        assert_eq!((a, b, sigma), (1.0, 0.0, 0.0));
        assert_eq!(s.subsequence(4).unwrap(), vec![99, 66, 33, 0]);
        assert_eq!(s.subsequence(100).unwrap().len(), 100);
        assert_eq!(s.subsequence(1).unwrap(), vec![99]);
        assert!(s.subsequence(0).is_err() && s.subsequence(101).is_err());
        assert!(NoiseSchedule::new(BetaSchedule::Cosine, 1).is_err());
        // The linear schedule scaled to 20 steps would reach β = 1.
        let message = NoiseSchedule::new(BetaSchedule::Linear, 20)
            .unwrap_err()
            .to_string();
        assert!(message.contains("timesteps"), "{message}");
    }
}
