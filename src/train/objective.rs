//! Training objectives (paper Section 2.3 and Appendix B): natural training, PGD adversarial
//! training (Madry et al., 2018), TRADES (Zhang et al., 2019), FGSM with a random start ("fast"
//! AT, Wong et al., 2020), free AT (Shafahi et al., 2019; m replays of each batch with a
//! perturbation carried across batches, as the paper uses on ImageNet), and the two noise
//! objectives base classifiers of randomized smoothing are trained with (Section 3.1.2,
//! [`crate::smoothing`]): Gaussian data augmentation (Cohen et al., 2019) and stability training
//! (Zheng et al., 2016, as RST uses it). Every objective returns per-sample losses, so PORT can
//! weight real and synthetic samples (train::port).
//!
//! Adversarial examples are generated with the model in evaluation mode (batch-norm statistics
//! are not updated by the attack), then the loss is taken in training mode.

use serde::{Deserialize, Serialize};

use crate::config::{non_negative_finite, positive_finite};
use crate::error::{Error, Result};
use crate::theory::norm::Norm;

/// `[objective]` of a training config.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Objective {
    /// Cross-entropy on clean inputs.
    #[default]
    Natural,
    /// Cross-entropy on PGD-`steps` adversarial examples with a random start.
    Pgd {
        norm: Norm,
        epsilon: f64,
        step_size: f64,
        steps: usize,
    },
    /// CE(f(x), y) + β · KL(f(x) ‖ f(x′)), x′ maximising the KL term by PGD-`steps`.
    Trades {
        norm: Norm,
        epsilon: f64,
        step_size: f64,
        steps: usize,
        beta: f64,
    },
    /// One step of size `step_size` (1.25 ε in Wong et al.) from a uniform random start.
    Fgsm {
        norm: Norm,
        epsilon: f64,
        step_size: f64,
    },
    /// Each batch replayed `replays` times; one optimiser step and one ε-sized sign step on
    /// the carried perturbation per replay.
    Free {
        norm: Norm,
        epsilon: f64,
        replays: usize,
    },
    /// Cross-entropy on x + δ, δ ~ N(0, σ²I) in [0, 1] pixel space (no clipping, as Cohen et al.).
    GaussianAugmentation { sigma: f64 },
    /// Stability training: CE(f(x), y) + β · KL(f(x) ‖ f(x + δ)), δ ~ N(0, σ²I)
    /// (the paper, after RST: β = 6, σ = 0.25).
    Stability { sigma: f64, beta: f64 },
}

impl Objective {
    /// Range checks; errors name `objective.<field>`.
    pub fn validate(&self) -> Result<()> {
        let (norm, epsilon) = match self {
            Objective::Natural => return Ok(()),
            Objective::GaussianAugmentation { sigma } => {
                return positive_finite("objective.sigma", *sigma);
            }
            Objective::Stability { sigma, beta } => {
                positive_finite("objective.sigma", *sigma)?;
                return non_negative_finite("objective.beta", *beta);
            }
            Objective::Pgd { norm, epsilon, .. }
            | Objective::Trades { norm, epsilon, .. }
            | Objective::Fgsm { norm, epsilon, .. }
            | Objective::Free { norm, epsilon, .. } => (*norm, *epsilon),
        };
        if norm == Norm::L1 {
            return Err(Error::invalid("objective.norm", "linf or l2"));
        }
        positive_finite("objective.epsilon", epsilon)?;
        match self {
            Objective::Pgd {
                step_size, steps, ..
            }
            | Objective::Trades {
                step_size, steps, ..
            } if !(*step_size > 0.0 && step_size.is_finite()) || *steps == 0 => {
                return Err(Error::invalid(
                    "objective.step_size",
                    "a finite step size > 0 and at least 1 step",
                ));
            }
            Objective::Fgsm { step_size, .. } => {
                positive_finite("objective.step_size", *step_size)?
            }
            Objective::Free { replays: 0, .. } => {
                return Err(Error::invalid("objective.replays", "at least 1"));
            }
            _ => {}
        }
        if let Objective::Trades { beta, .. } = self {
            non_negative_finite("objective.beta", *beta)?;
        }
        Ok(())
    }

    /// The objective with ε and the attack step size (or the noise level σ) multiplied by
    /// `factor` (the ε warm-up of [`crate::train::TrainConfig::epsilon_warmup_epochs`]).
    pub fn scaled(&self, factor: f64) -> Objective {
        let mut scaled = self.clone();
        match &mut scaled {
            Objective::Natural => {}
            Objective::Pgd {
                epsilon, step_size, ..
            }
            | Objective::Trades {
                epsilon, step_size, ..
            }
            | Objective::Fgsm {
                epsilon, step_size, ..
            } => {
                *epsilon *= factor;
                *step_size *= factor;
            }
            Objective::Free { epsilon, .. } => *epsilon *= factor,
            Objective::GaussianAugmentation { sigma } | Objective::Stability { sigma, .. } => {
                *sigma *= factor
            }
        }
        scaled
    }

    /// How many optimiser steps each batch gets (free AT's replays; 1 otherwise).
    pub fn replays(&self) -> usize {
        match self {
            Objective::Free { replays, .. } => *replays,
            _ => 1,
        }
    }
}

#[cfg(feature = "torch")]
pub use with_torch::{BatchLoss, FreePerturbation};

#[cfg(feature = "torch")]
mod with_torch {
    use tch::nn::ModuleT;
    use tch::{Kind, Reduction, Tensor};

    use super::Objective;
    use crate::attack::Pgd;
    use crate::attack::threat::Threat;

    /// Per-sample losses of a batch and the logits its accuracy is counted on.
    pub struct BatchLoss {
        pub per_sample: Tensor,
        pub logits: Tensor,
    }

    /// Free AT's perturbation, carried from batch to batch (reset when the batch shape changes).
    #[derive(Default)]
    pub struct FreePerturbation {
        delta: Option<Tensor>,
    }

    fn cross_entropy(logits: &Tensor, y: &Tensor, smoothing: f64) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, smoothing)
    }

    /// KL(p ‖ q) per sample for logits of p and q.
    fn kl_divergence(p_logits: &Tensor, q_logits: &Tensor) -> Tensor {
        let log_p = p_logits.log_softmax(-1, Kind::Float);
        let log_q = q_logits.log_softmax(-1, Kind::Float);
        (log_p.exp() * (&log_p - log_q)).sum_dim_intlist(&[-1i64][..], false, Kind::Float)
    }

    impl Objective {
        /// The batch loss (not yet backpropagated). For free AT the carried perturbation
        /// requires grad; call [`Objective::after_backward`] after `backward()`.
        pub fn batch_loss<M: ModuleT + ?Sized>(
            &self,
            net: &M,
            x: &Tensor,
            y: &Tensor,
            smoothing: f64,
            free: &mut FreePerturbation,
        ) -> BatchLoss {
            let train_on = |input: &Tensor| {
                let logits = net.forward_t(input, true);
                BatchLoss {
                    per_sample: cross_entropy(&logits, y, smoothing),
                    logits,
                }
            };
            match self {
                Objective::Natural => train_on(x),
                Objective::Pgd {
                    norm,
                    epsilon,
                    step_size,
                    steps,
                } => {
                    let pgd = Pgd {
                        norm: *norm,
                        epsilon: *epsilon,
                        step_size: *step_size,
                        steps: *steps,
                        random_start: true,
                        restarts: 1,
                    };
                    train_on(&pgd.perturb(net, x, y, false))
                }
                Objective::Fgsm {
                    norm,
                    epsilon,
                    step_size,
                } => {
                    let fgsm = Pgd {
                        norm: *norm,
                        epsilon: *epsilon,
                        step_size: *step_size,
                        steps: 1,
                        random_start: true,
                        restarts: 1,
                    };
                    train_on(&fgsm.perturb(net, x, y, false))
                }
                Objective::Trades {
                    norm,
                    epsilon,
                    step_size,
                    steps,
                    beta,
                } => {
                    let threat = Threat {
                        norm: *norm,
                        epsilon: *epsilon,
                    };
                    let clean_eval = tch::no_grad(|| net.forward_t(x, false));
                    let mut delta = threat.project(x, &(x.randn_like() * 0.001));
                    for _ in 0..*steps {
                        let d = delta.detach().set_requires_grad(true);
                        let kl = kl_divergence(&clean_eval, &net.forward_t(&(x + &d), false))
                            .sum(Kind::Float);
                        let grad = Tensor::run_backward(&[kl], &[&d], false, false).remove(0);
                        delta =
                            threat.project(x, &(d.detach() + threat.steepest(&grad) * *step_size));
                    }
                    let adversarial = (x + delta).detach();
                    let logits = net.forward_t(x, true);
                    let robust = kl_divergence(&logits, &net.forward_t(&adversarial, true));
                    BatchLoss {
                        per_sample: cross_entropy(&logits, y, smoothing) + robust * *beta,
                        logits,
                    }
                }
                Objective::GaussianAugmentation { sigma } => {
                    train_on(&(x + x.randn_like() * *sigma))
                }
                Objective::Stability { sigma, beta } => {
                    let logits = net.forward_t(x, true);
                    let noisy = net.forward_t(&(x + x.randn_like() * *sigma), true);
                    BatchLoss {
                        per_sample: cross_entropy(&logits, y, smoothing)
                            + kl_divergence(&logits, &noisy) * *beta,
                        logits,
                    }
                }
                Objective::Free { .. } => {
                    let delta = match &free.delta {
                        Some(d) if d.size() == x.size() => d.detach(),
                        _ => x.zeros_like(),
                    }
                    .set_requires_grad(true);
                    free.delta = Some(delta.shallow_clone());
                    train_on(&(x + &delta).clamp(0.0, 1.0))
                }
            }
        }

        /// Free AT: one ascent step on the carried perturbation from the gradient the
        /// batch's `backward()` left in it; nothing for the other objectives.
        pub fn after_backward(&self, x: &Tensor, free: &mut FreePerturbation) {
            if let (Objective::Free { norm, epsilon, .. }, Some(delta)) = (self, &free.delta) {
                let threat = Threat {
                    norm: *norm,
                    epsilon: *epsilon,
                };
                let grad = delta.grad();
                if grad.defined() {
                    let step = tch::no_grad(|| {
                        threat.project(x, &(delta.detach() + threat.steepest(&grad) * *epsilon))
                    });
                    free.delta = Some(step);
                }
            }
        }
    }
}
