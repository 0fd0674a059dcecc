//! Projected gradient descent on the cross-entropy loss (Madry et al., 2018) under ℓ∞ or ℓ2:
//! from a random start in the ε-ball, `steps` ascent steps of size `step_size` (the sign of the
//! gradient for ℓ∞, the ℓ2-normalised gradient for ℓ2), each followed by projection onto the
//! ε-ball around `x` and the [0, 1] box. With restarts, each sample keeps the restart with the
//! highest final loss.

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

use crate::error::{Error, Result};
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

/// Per-sample ℓ2 norms of a batch, shaped to broadcast against it (N, 1, 1, …).
fn per_sample_l2(t: &Tensor) -> Tensor {
    let n = t.size()[0];
    let mut shape = vec![n];
    shape.extend(std::iter::repeat_n(1, t.dim() - 1));
    t.reshape([n, -1]).norm_scalaropt_dim(2, [1], false).view(shape.as_slice())
}

impl Pgd {
    /// Range checks; errors name the field under `attack.`.
    pub fn validate(&self) -> Result<()> {
        if self.norm == Norm::L1 {
            return Err(Error::invalid("attack.norm", "linf or l2"));
        }
        for (field, v) in [("attack.epsilon", self.epsilon), ("attack.step_size", self.step_size)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(field, format!("a finite value ≥ 0, got {v}")));
            }
        }
        if self.restarts == 0 {
            return Err(Error::invalid("attack.restarts", "at least 1"));
        }
        Ok(())
    }

    /// Projects `delta` onto the ε-ball and keeps `x + delta` in [0, 1].
    fn project(&self, x: &Tensor, delta: &Tensor) -> Tensor {
        let delta = match self.norm {
            Norm::Linf => delta.clamp(-self.epsilon, self.epsilon),
            _ => {
                let scale = (per_sample_l2(delta) + 1e-12).reciprocal().multiply_scalar(self.epsilon).clamp_max(1.0);
                delta * scale
            }
        };
        (x + delta).clamp(0.0, 1.0) - x
    }

    fn random_start(&self, x: &Tensor) -> Tensor {
        if !self.random_start {
            return x.zeros_like();
        }
        match self.norm {
            Norm::Linf => x.rand_like().multiply_scalar(2.0 * self.epsilon) - self.epsilon,
            _ => {
                // A uniform direction scaled to a uniform fraction of ε.
                let direction = x.randn_like();
                let n = x.size()[0];
                let mut shape = vec![n];
                shape.extend(std::iter::repeat_n(1, x.dim() - 1));
                let radius = Tensor::rand(shape.as_slice(), (Kind::Float, x.device())) * self.epsilon;
                &direction / (per_sample_l2(&direction) + 1e-12) * radius
            }
        }
    }

    /// Adversarial examples for `(x, y)` against `model` (run with `train` as its mode).
    pub fn perturb<M: ModuleT>(&self, model: &M, x: &Tensor, y: &Tensor, train: bool) -> Tensor {
        let x = x.detach();
        let mut best = x.shallow_clone();
        let mut best_loss = Tensor::full([x.size()[0]], f64::NEG_INFINITY, (Kind::Float, x.device()));
        for _ in 0..self.restarts {
            let mut delta = self.project(&x, &self.random_start(&x));
            for _ in 0..self.steps {
                let d = delta.detach().set_requires_grad(true);
                let loss = model.forward_t(&(&x + &d), train).cross_entropy_loss::<Tensor>(y, None, Reduction::Sum, -100, 0.0);
                let grad = Tensor::run_backward(&[loss], &[&d], false, false).remove(0);
                let step = match self.norm {
                    Norm::Linf => grad.sign(),
                    _ => &grad / (per_sample_l2(&grad) + 1e-12),
                };
                delta = self.project(&x, &(d.detach() + step * self.step_size));
            }
            let candidate = (&x + &delta).detach();
            if self.restarts == 1 {
                return candidate;
            }
            let loss = tch::no_grad(|| {
                model.forward_t(&candidate, train).cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
            });
            let better = loss.gt_tensor(&best_loss);
            let mut mask_shape = vec![x.size()[0]];
            mask_shape.extend(std::iter::repeat_n(1, x.dim() - 1));
            best = candidate.where_self(&better.view(mask_shape.as_slice()), &best);
            best_loss = loss.where_self(&better, &best_loss);
        }
        best
    }
}
