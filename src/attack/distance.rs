//! Minimal adversarial distance per sample, for the average robustness Rob_d(h, D) =
//! E[d(x, closest adversarial)] of Definition 1. Two upper bounds of the true distance, combined
//! by their minimum: the norm of FAB's minimal perturbation (untargeted), and a bisection over the
//! radius with PGD (a radius where PGD finds an adversarial example bounds the distance from
//! above; the bisection keeps the smallest such radius). Clean errors have distance 0; points
//! neither finds an adversarial example for within `max_radius` are reported as unbroken.

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::threat::{Threat, misclassified};
use super::{Fab, FabTarget, Pgd};

/// Settings of the minimal-distance search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MinimalDistance {
    pub threat: Threat,
    /// The largest radius searched (the threat's ε is ignored).
    pub max_radius: f64,
    pub fab_iterations: usize,
    pub bisection_steps: usize,
    pub pgd_steps: usize,
}

/// Per-sample distances (N,) from each method and their minimum; ∞ where nothing was found.
pub struct Distances {
    pub fab: Tensor,
    pub bisection: Tensor,
    pub upper_bound: Tensor,
}

impl MinimalDistance {
    /// Distances for a batch.
    pub fn measure<M: ModuleT + ?Sized>(&self, model: &M, x: &Tensor, y: &Tensor) -> Distances {
        let threat = Threat {
            norm: self.threat.norm,
            epsilon: self.max_radius,
        };
        let fab = Fab {
            threat,
            target: FabTarget::Untargeted,
            iterations: self.fab_iterations,
            restarts: 1,
        };
        let (_, fab_norm) = fab.minimal(model, x, y);
        let fab_norm = fab_norm.where_self(
            &fab_norm.le(self.max_radius * (1.0 + 1e-6)),
            &fab_norm.full_like(f64::INFINITY),
        );
        let bisection = self.bisect(model, x, y);
        let upper_bound = fab_norm.minimum(&bisection);
        Distances {
            fab: fab_norm,
            bisection,
            upper_bound,
        }
    }

    /// The smallest radius (to 2^-steps of `max_radius`) at which PGD succeeds, per sample.
    fn bisect<M: ModuleT + ?Sized>(&self, model: &M, x: &Tensor, y: &Tensor) -> Tensor {
        let pgd = Pgd {
            norm: self.threat.norm,
            epsilon: self.max_radius,
            step_size: self.max_radius / 4.0,
            steps: self.pgd_steps,
            random_start: false,
            restarts: 1,
        };
        let succeeds = |radius: &Tensor| {
            let adversarial = pgd.perturb_within(model, x, y, false, radius);
            tch::no_grad(|| misclassified(&model.forward_t(&adversarial, false), y))
        };
        let n = x.size()[0];
        let mut upper = Tensor::full([n], self.max_radius, (Kind::Float, x.device()));
        let found = succeeds(&upper);
        let mut lower = upper.zeros_like();
        let clean_wrong = tch::no_grad(|| misclassified(&model.forward_t(x, false), y));
        for _ in 0..self.bisection_steps {
            let middle = (&lower + &upper) * 0.5;
            let hit = succeeds(&middle);
            upper = middle.where_self(&hit, &upper);
            lower = lower.where_self(&hit, &middle);
        }
        let infinite = upper.full_like(f64::INFINITY);
        upper
            .where_self(&found, &infinite)
            .masked_fill(&clean_wrong, 0.0)
    }
}
