//! Learning-rate schedules with linear warm-up (paper Appendix B: lr 0.1, cosine decay).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the learning rate evolves after warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// `lr · (1 + cos(π t))/2` over the post-warm-up fraction `t ∈ [0, 1]`.
    Cosine,
    /// Multiply by `gamma` at each epoch in `milestones`.
    Step { milestones: Vec<f64>, gamma: f64 },
}

/// A schedule with `warmup_epochs` of linear warm-up from 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningRate {
    pub base: f64,
    #[serde(default)]
    pub warmup_epochs: f64,
    #[serde(default = "cosine")]
    pub schedule: Schedule,
}

fn cosine() -> Schedule {
    Schedule::Cosine
}

impl LearningRate {
    /// Range checks; errors name the field under `lr.`.
    pub fn validate(&self, epochs: usize) -> Result<()> {
        if !(self.base > 0.0 && self.base.is_finite()) {
            return Err(Error::invalid(
                "lr.base",
                format!("a finite rate > 0, got {}", self.base),
            ));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs < epochs.max(1) as f64) {
            return Err(Error::invalid(
                "lr.warmup_epochs",
                format!(
                    "a value in [0, epochs = {epochs}), got {}",
                    self.warmup_epochs
                ),
            ));
        }
        if let Schedule::Step { milestones, gamma } = &self.schedule
            && (!(*gamma > 0.0 && *gamma <= 1.0)
                || milestones.iter().any(|m| !m.is_finite() || *m < 0.0)
                || milestones.windows(2).any(|w| w[1] <= w[0]))
        {
            return Err(Error::invalid(
                "lr.schedule",
                "strictly ascending step milestones ≥ 0 (epochs) and a decay gamma in (0, 1]",
            ));
        }
        Ok(())
    }

    /// The rate at fractional epoch `t` (e.g. 2.5 = half-way through the third epoch) of `epochs`.
    pub fn at(&self, t: f64, epochs: usize) -> f64 {
        if t < self.warmup_epochs {
            return self.base * (t / self.warmup_epochs).max(0.0);
        }
        match &self.schedule {
            Schedule::Constant => self.base,
            Schedule::Cosine => {
                let span = (epochs as f64 - self.warmup_epochs).max(f64::MIN_POSITIVE);
                let progress = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
                self.base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Step { milestones, gamma } => {
                self.base * gamma.powi(milestones.iter().filter(|m| t >= **m).count() as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_zero() {
        let lr = LearningRate {
            base: 0.1,
            warmup_epochs: 2.0,
            schedule: Schedule::Cosine,
        };
        assert_eq!(lr.at(0.0, 10), 0.0);
        assert!((lr.at(1.0, 10) - 0.05).abs() < 1e-15);
        assert!((lr.at(2.0, 10) - 0.1).abs() < 1e-15);
        assert!((lr.at(6.0, 10) - 0.05).abs() < 1e-15);
        assert!(lr.at(10.0, 10).abs() < 1e-15);
    }

    #[test]
    fn step_schedule_multiplies_at_milestones() {
        let lr = LearningRate {
            base: 0.1,
            warmup_epochs: 0.0,
            schedule: Schedule::Step {
                milestones: vec![5.0, 8.0],
                gamma: 0.1,
            },
        };
        assert!((lr.at(4.99, 10) - 0.1).abs() < 1e-15);
        assert!((lr.at(5.0, 10) - 0.01).abs() < 1e-15);
        assert!((lr.at(9.0, 10) - 0.001).abs() < 1e-15);
        assert!(lr.validate(10).is_ok());
        let bad = LearningRate { base: -1.0, ..lr };
        assert!(
            bad.validate(10)
                .unwrap_err()
                .to_string()
                .contains("lr.base")
        );
    }
}
