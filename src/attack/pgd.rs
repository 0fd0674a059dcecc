//! Projected gradient descent on the cross-entropy loss (Madry et al., 2018) under ℓ∞ or ℓ2:
//! from a random start in the ε-ball, `steps` ascent steps of size `step_size` (the sign of the
//! gradient for ℓ∞, the ℓ2-normalised gradient for ℓ2), each followed by projection onto the
//! ε-ball around `x` and the [0, 1] box. With restarts, each sample keeps the restart with the
//! highest final loss.

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

use super::threat::{Threat, broadcast};
use crate::error::Result;
use crate::theory::norm::Norm;

/// PGD settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pgd {
    /// `linf` or `l2`.
    pub norm: Norm,
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    #[serde(default = "yes")]
    pub random_start: bool,
    #[serde(default = "one")]
    pub restarts: usize,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}

impl Pgd {
    /// FGSM (Goodfellow et al., 2015): one step of size ε from the clean input.
    pub fn fgsm(threat: Threat) -> Pgd {
        Pgd {
            norm: threat.norm,
            epsilon: threat.epsilon,
            step_size: threat.epsilon,
            steps: 1,
            random_start: false,
            restarts: 1,
        }
    }

    /// The ball this attack searches.
    pub fn threat(&self) -> Threat {
        Threat {
            norm: self.norm,
            epsilon: self.epsilon,
        }
    }

    /// Range checks; errors name the field under `attack.`.
    pub fn validate(&self) -> Result<()> {
        self.threat().validate("attack")?;
        crate::config::non_negative_finite("attack.step_size", self.step_size)?;
        crate::config::at_least("attack.restarts", self.restarts, 1)
    }

    /// Adversarial examples for `(x, y)` against `model` (run with `train` as its mode).
    pub fn perturb<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
        train: bool,
    ) -> Tensor {
        self.perturb_within(model, x, y, train, &self.threat().radii(x))
    }

    /// PGD in a ball of radius `radius[i]` around sample i, the step size scaled by radius/ε
    /// (the minimal-distance bisection of [`super::distance`] uses it).
    pub fn perturb_within<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
        train: bool,
        radius: &Tensor,
    ) -> Tensor {
        let threat = self.threat();
        let x = x.detach();
        let step = if self.epsilon > 0.0 {
            broadcast(radius, &x) * (self.step_size / self.epsilon)
        } else {
            broadcast(&radius.zeros_like(), &x)
        };
        let mut best = x.shallow_clone();
        let mut best_loss =
            Tensor::full([x.size()[0]], f64::NEG_INFINITY, (Kind::Float, x.device()));
        for _ in 0..self.restarts {
            let start = if self.random_start {
                threat.random_delta_within(&x, radius)
            } else {
                x.zeros_like()
            };
            let mut delta = threat.project_within(&x, &start, radius);
            for _ in 0..self.steps {
                let d = delta.detach().set_requires_grad(true);
                let loss = model
                    .forward_t(&(&x + &d), train)
                    .cross_entropy_loss::<Tensor>(y, None, Reduction::Sum, -100, 0.0);
                let grad = Tensor::run_backward(&[loss], &[&d], false, false).remove(0);
                delta = threat.project_within(
                    &x,
                    &(d.detach() + threat.steepest(&grad) * &step),
                    radius,
                );
            }
            let candidate = (&x + &delta).detach();
            if self.restarts == 1 {
                return candidate;
            }
            let loss = tch::no_grad(|| {
                model
                    .forward_t(&candidate, train)
                    .cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
            });
            let better = loss.gt_tensor(&best_loss);
            best = candidate.where_self(&broadcast(&better, &x), &best);
            best_loss = loss.where_self(&better, &best_loss);
        }
        best
    }
}
