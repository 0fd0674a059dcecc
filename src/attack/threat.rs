//! The threat model every attack shares: an ℓ∞ or ℓ2 ball of radius ε around the input,
//! intersected with the [0, 1] pixel box, and the per-sample tensor operations on it.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::theory::norm::Norm;

/// An ε-ball in `norm` (ℓ∞ or ℓ2) around each input, inside the [0, 1] box.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threat {
    pub norm: Norm,
    pub epsilon: f64,
}

/// A shape (N, 1, 1, …) that broadcasts a per-sample value against a batch like `t`.
pub fn per_sample_shape(t: &Tensor) -> Vec<i64> {
    let mut shape = vec![t.size()[0]];
    shape.extend(std::iter::repeat_n(1, t.dim() - 1));
    shape
}

/// `v` (N,) viewed to broadcast against a batch like `t`.
pub fn broadcast(v: &Tensor, t: &Tensor) -> Tensor {
    v.view(per_sample_shape(t).as_slice())
}

/// Per-sample `norm` of a batch (N,).
pub fn norms(t: &Tensor, norm: Norm) -> Tensor {
    let flat = t.reshape([t.size()[0], -1]);
    match norm {
        Norm::Linf => flat.abs().amax([1], false),
        Norm::L2 => flat.norm_scalaropt_dim(2, [1], false),
        Norm::L1 => flat.abs().sum_dim_intlist(&[1i64][..], false, Kind::Float),
    }
}

/// A targeted attack's number of target classes (`None`: untargeted) is at least 1; the error
/// names `field`.
pub fn validate_targets(field: &str, targets: Option<usize>) -> Result<()> {
    if targets == Some(0) {
        return Err(Error::invalid(field, "at least 1 target class"));
    }
    Ok(())
}

/// The targets an attack runs against, one after the other: `None` once when untargeted;
/// otherwise the ranks 1, 2, … `targets` of the clean logits (the runner-up classes), only those
/// below `classes`.
pub fn target_ranks(targets: Option<usize>, classes: i64) -> Vec<Option<i64>> {
    match targets {
        None => vec![None],
        Some(t) => (1..=t as i64).filter(|&r| r < classes).map(Some).collect(),
    }
}

impl Threat {
    /// ℓ∞ or ℓ2 and a finite ε ≥ 0; errors name `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        if self.norm == Norm::L1 {
            return Err(Error::invalid(format!("{field}.norm"), "linf or l2"));
        }
        crate::config::non_negative_finite(&format!("{field}.epsilon"), self.epsilon)
    }

    /// The checks every attack shares under `field`: this threat model, at least one step
    /// (`steps = (field name, unit, count)`, e.g. `("iterations", "iteration", 100)`) and at
    /// least one restart.
    pub fn validate_attack(
        &self,
        field: &str,
        (name, unit, count): (&str, &str, usize),
        restarts: usize,
    ) -> Result<()> {
        self.validate(field)?;
        if count == 0 || restarts == 0 {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                format!("at least 1 {unit} and 1 restart"),
            ));
        }
        Ok(())
    }

    /// Projects `delta` onto the ε-ball (clipping for ℓ∞, radial scaling for ℓ2) and then
    /// keeps `x + delta` in [0, 1]; returns the new delta.
    pub fn project(&self, x: &Tensor, delta: &Tensor) -> Tensor {
        self.project_within(x, delta, &self.radii(x))
    }

    /// ε for every sample of `x`, (N,).
    pub fn radii(&self, x: &Tensor) -> Tensor {
        Tensor::full([x.size()[0]], self.epsilon, (Kind::Float, x.device()))
    }

    /// As [`Threat::project`] with a radius per sample, (N,), instead of ε.
    pub fn project_within(&self, x: &Tensor, delta: &Tensor, radius: &Tensor) -> Tensor {
        let r = broadcast(radius, delta);
        let delta = match self.norm {
            Norm::Linf => delta.clamp_tensor(Some(&-&r), Some(&r)),
            _ => delta * (&r / (broadcast(&norms(delta, Norm::L2), delta) + 1e-12)).clamp_max(1.0),
        };
        (x + delta).clamp(0.0, 1.0) - x
    }

    /// A uniformly random point of the ε-ball (ℓ∞: uniform per coordinate; ℓ2: a uniform
    /// direction at a uniform fraction of ε), as a delta (not yet projected onto the box).
    pub fn random_delta(&self, x: &Tensor) -> Tensor {
        self.random_delta_within(x, &self.radii(x))
    }

    /// As [`Threat::random_delta`] with a radius per sample.
    pub fn random_delta_within(&self, x: &Tensor, radius: &Tensor) -> Tensor {
        let r = broadcast(radius, x);
        match self.norm {
            Norm::Linf => (x.rand_like() * 2.0 - 1.0) * r,
            _ => {
                let direction = x.randn_like();
                let fraction =
                    broadcast(&Tensor::rand([x.size()[0]], (Kind::Float, x.device())), x);
                &direction / broadcast(&(norms(&direction, Norm::L2) + 1e-12), &direction)
                    * fraction
                    * r
            }
        }
    }

    /// The steepest-ascent direction of unit `norm` for a gradient: its sign for ℓ∞, the
    /// ℓ2-normalised gradient for ℓ2.
    pub fn steepest(&self, grad: &Tensor) -> Tensor {
        match self.norm {
            Norm::Linf => grad.sign(),
            _ => grad / broadcast(&(norms(grad, Norm::L2) + 1e-12), grad),
        }
    }

    /// Per-sample size of `delta` in this threat's norm.
    pub fn size(&self, delta: &Tensor) -> Tensor {
        norms(delta, self.norm)
    }
}

/// Boolean mask (N,): the model's prediction for `logits` differs from `y`.
pub fn misclassified(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.argmax(-1, false).ne_tensor(y)
}

/// The margin z_y − max_{j≠y} z_j per sample (negative exactly when misclassified).
pub fn margin(logits: &Tensor, y: &Tensor) -> Tensor {
    let true_logit = logits.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    let others = logits.scatter_value(1, &y.unsqueeze(1), f64::NEG_INFINITY);
    true_logit - others.amax([1], false)
}

/// The difference-of-logits-ratio loss of Croce & Hein (2020), per sample.
/// Untargeted: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3); targeted at t:
/// −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2), where z_π are the sorted logits.
pub fn dlr_loss(logits: &Tensor, y: &Tensor, target: Option<&Tensor>) -> Tensor {
    let (sorted, _) = logits.sort(1, true);
    // With fewer than four classes the ranks used in the scale fall back to the last one.
    let last = sorted.size()[1] - 1;
    let top = |i: i64| sorted.select(1, i.min(last));
    let true_logit = logits.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    match target {
        None => -margin(logits, y) / (top(0) - top(2) + 1e-12),
        Some(t) => {
            let target_logit = logits.gather(1, &t.unsqueeze(1), false).squeeze_dim(1);
            -(true_logit - target_logit) / (top(0) - (top(2) + top(3)) * 0.5 + 1e-12)
        }
    }
}

/// The class with the `rank`-th highest logit (rank 0 = the prediction), per sample.
pub fn ranked_class(logits: &Tensor, rank: i64) -> Tensor {
    logits.argsort(1, true).select(1, rank)
}

/// The outcome of an attack so far: for every sample its adversarial point (the input until
/// one is found) and whether it is broken (misclassified within the ball).
pub struct Outcome {
    pub adversarial: Tensor,
    pub broken: Tensor,
}

impl Outcome {
    /// Nothing found yet for the inputs `x`.
    pub fn unbroken(x: &Tensor) -> Self {
        Outcome {
            adversarial: x.shallow_clone(),
            broken: Tensor::zeros([x.size()[0]], (Kind::Bool, x.device())),
        }
    }

    /// Runs `attack` on the samples not yet broken (given their row indices, it returns its
    /// points and hit mask for those rows) and records the hits. Returns false, without calling
    /// `attack`, when every sample is already broken.
    pub fn attack_open(&mut self, attack: impl FnOnce(&Tensor) -> (Tensor, Tensor)) -> bool {
        let open = self.broken.logical_not().nonzero().squeeze_dim(1);
        if open.size()[0] == 0 {
            return false;
        }
        let (found, hit) = attack(&open);
        let rows = open.masked_select(&hit);
        self.adversarial = self.adversarial.index_copy(
            0,
            &rows,
            &found.index_select(0, &hit.nonzero().squeeze_dim(1)),
        );
        self.broken = self.broken.index_fill(0, &rows, 1);
        true
    }
}
