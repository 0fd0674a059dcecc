//! Means with confidence intervals.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::error::{Error, Result};

/// A Monte-Carlo mean with a two-sided normal-approximation confidence interval
/// `mean ± z_{(1+c)/2} · std_error`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub std_error: f64,
    pub half_width: f64,
    pub confidence: f64,
    pub samples: usize,
}

impl Estimate {
    /// Lower end of the interval.
    pub fn lower(&self) -> f64 {
        self.mean - self.half_width
    }

    /// Upper end of the interval.
    pub fn upper(&self) -> f64 {
        self.mean + self.half_width
    }

    /// Whether `value` lies in the interval.
    pub fn contains(&self, value: f64) -> bool {
        self.lower() <= value && value <= self.upper()
    }

    /// Sample mean and interval of i.i.d. values (unbiased variance).
    pub fn from_samples(values: &[f64], confidence: f64) -> Result<Estimate> {
        Estimate::stratified(&[values.to_vec()], &[1.0], confidence)
    }

    /// Stratified estimate `Σ_s w_s · mean_s` with variance `Σ_s w_s² var_s / n_s`.
    pub fn stratified(strata: &[Vec<f64>], weights: &[f64], confidence: f64) -> Result<Estimate> {
        let z = normal_quantile(confidence)?;
        if strata.len() != weights.len() {
            return Err(Error::invalid("strata", "one weight per stratum"));
        }
        let (mut mean, mut variance, mut samples) = (0.0, 0.0, 0);
        for (values, w) in strata.iter().zip(weights) {
            let n = values.len();
            if n < 2 {
                return Err(Error::invalid(
                    "samples",
                    format!("at least 2 values per stratum, got {n}"),
                ));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(Error::invalid("samples", "finite values"));
            }
            let m = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
            mean += w * m;
            variance += w * w * var / n as f64;
            samples += n;
        }
        let std_error = variance.sqrt();
        Ok(Estimate {
            mean,
            std_error,
            half_width: z * std_error,
            confidence,
            samples,
        })
    }
}

/// `z` with `Pr[|N(0,1)| ≤ z] = confidence`.
pub fn normal_quantile(confidence: f64) -> Result<f64> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::invalid(
            "confidence",
            format!("a level strictly between 0 and 1, got {confidence}"),
        ));
    }
    Ok(Normal::standard().inverse_cdf(0.5 + confidence / 2.0))
}
