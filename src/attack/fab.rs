//! FAB, the fast adaptive boundary attack (Croce & Hein, 2020): a minimal-norm attack that
//! linearises the classifier around the current point, projects onto the linearised decision
//! boundary inside the [0, 1] box, both from the current point (δ₁) and from the original input
//! (δ₂), and takes the biased step
//!   x ← clip((1 − α)(x + η δ₁) + α(x_orig + η δ₂)),  α = min(‖δ₁‖ / (‖δ₁‖ + ‖δ₂‖), α_max),
//! followed, once x is misclassified, by the backward step x ← (1 − β) x_orig + β x that pulls it
//! towards the input (η = 1.05, α_max = 0.1, β = 0.9 as published). FAB-T linearises f_t − f_y
//! for a target t (the classes ranked 2…targets+1 by the clean logits, one run each); untargeted
//! FAB picks, per sample and iteration, the class with the closest linearised boundary,
//! |f_c − f_y| / ‖∇(f_c − f_y)‖_*. The smallest misclassified point seen is kept.
//!
//! The projection min ‖δ‖ s.t. w·δ = c, x + δ ∈ [0, 1] is solved exactly: its solution is
//! clip(s·w) for ℓ2 and clip(s·sign(w)) for ℓ∞, and w·δ is piecewise linear and monotone in s,
//! so one sort of the breakpoints per row gives s in closed form ([`project_onto_hyperplane`]).

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::threat::{Threat, broadcast, norms, ranked_class, target_ranks, validate_targets};
use crate::error::Result;
use crate::theory::norm::Norm;

/// Untargeted (all classes) or FAB-T.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FabTarget {
    Untargeted,
    Targeted { targets: usize },
}

/// FAB settings. `threat.epsilon` decides success for robust accuracy (a point is broken when
/// FAB finds a misclassified point within ε); the minimal norms are reported regardless.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fab {
    pub threat: Threat,
    pub target: FabTarget,
    pub iterations: usize,
    pub restarts: usize,
}

const ETA: f64 = 1.05;
const ALPHA_MAX: f64 = 0.1;
const BETA: f64 = 0.9;

/// The minimal-`norm` δ (rows of (N, D)) with w·δ = c and x + δ ∈ [0, 1]; where the box makes
/// the hyperplane unreachable, the δ that gets closest.
///
/// With c ≥ 0 (flip the sign of w otherwise), the solution moves along sign(w) (ℓ∞) or w (ℓ2)
/// until the box stops each coordinate: δ_i(s) = clip(s·v_i, −x_i, 1 − x_i). The reach
/// w·δ(s) = Σ_i a_i·min(s, t_i) is piecewise linear, concave and increasing in s, with
/// a_i = |w_i|, t_i = cap_i (ℓ∞) or a_i = w_i², t_i = cap_i/|w_i| (ℓ2), where cap_i is the room
/// the box leaves in the direction of w_i (1 − x_i or x_i). Sorting the breakpoints t_i gives the
/// reach at each of them from running sums, and the s with reach c in closed form on its
/// segment — exact, with one sort per row.
pub fn project_onto_hyperplane(norm: Norm, x: &Tensor, w: &Tensor, c: &Tensor) -> Tensor {
    let sign = c.sign().unsqueeze(1);
    let (w, c) = (w * &sign, c.abs());
    let (lo, hi): (Tensor, Tensor) = (-x, 1.0 - x);
    let direction = match norm {
        Norm::Linf => w.sign(),
        _ => w.shallow_clone(),
    };
    let magnitude = w.abs();
    let room = hi.where_self(&w.ge(0.0), &x.shallow_clone());
    let (slope, breakpoint) = match norm {
        Norm::Linf => (magnitude.shallow_clone(), room),
        // Coordinates with w_i = 0 add nothing; their breakpoint is set to 0.
        _ => (
            magnitude.square(),
            (&room / magnitude.clamp_min(1e-30)).where_self(&magnitude.gt(0.0), &room.zeros_like()),
        ),
    };
    let scale = scale_reaching(&slope, &breakpoint, &c);
    (&direction * scale.unsqueeze(1)).clamp_tensor(Some(&lo), Some(&hi))
}

/// Per row, the smallest s ≥ 0 with Σ_i a_i·min(s, t_i) = c (a, t ≥ 0), or max_i t_i where no s
/// reaches c.
fn scale_reaching(a: &Tensor, t: &Tensor, c: &Tensor) -> Tensor {
    let sum = |v: &Tensor| v.cumsum(1, Kind::Float);
    let (t_sorted, order): (Tensor, Tensor) = t.sort(1, false);
    let a_sorted = a.gather(1, &order, false);
    let below = sum(&(&a_sorted * &t_sorted)); // Σ_{j≤k} a_j t_j
    let slope_used = sum(&a_sorted);
    let total = slope_used.select(1, -1).unsqueeze(1);
    let above = &total - &slope_used; // Σ_{j>k} a_j
    // Reach at breakpoint k; segment k lies between breakpoints k − 1 and k.
    let reach = &below + &t_sorted * &above;
    let segment = reach
        .lt_tensor(&c.unsqueeze(1))
        .sum_dim_intlist(&[1i64][..], true, Kind::Int64);
    let with_start = |v: &Tensor, first: &Tensor| Tensor::cat(&[first, v], 1);
    let below_before = with_start(&below, &total.zeros_like()).gather(1, &segment, false);
    let above_before = with_start(&above, &total).gather(1, &segment, false);
    let scale = ((c.unsqueeze(1) - below_before) / above_before.clamp_min(1e-30)).squeeze_dim(1);
    let last = t.size()[1];
    scale.where_self(&segment.squeeze_dim(1).lt(last), &t_sorted.select(1, -1))
}

impl Fab {
    /// Range checks under `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        self.threat.validate_attack(
            field,
            ("iterations", "iteration", self.iterations),
            self.restarts,
        )?;
        validate_targets(&format!("{field}.target"), self.targets())
    }

    /// The number of target classes when targeted (`None` otherwise).
    fn targets(&self) -> Option<usize> {
        match self.target {
            FabTarget::Targeted { targets } => Some(targets),
            FabTarget::Untargeted => None,
        }
    }

    /// The smallest misclassified points found and their distances to `x` (∞ where none was
    /// found; 0 where `x` is already misclassified).
    pub fn minimal<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
    ) -> (Tensor, Tensor) {
        let x = x.detach();
        let clean_logits = tch::no_grad(|| model.forward_t(&x, false));
        let wrong = clean_logits.argmax(-1, false).ne_tensor(y);
        let mut best = x.shallow_clone();
        let mut best_norm = Tensor::full([x.size()[0]], f64::INFINITY, (Kind::Float, x.device()))
            .masked_fill(&wrong, 0.0);
        let classes = clean_logits.size()[1];
        for rank in target_ranks(self.targets(), classes) {
            let target = rank.map(|r| ranked_class(&clean_logits, r));
            for restart in 0..self.restarts {
                let start = if restart == 0 {
                    x.shallow_clone()
                } else {
                    self.random_start(&x, &best_norm)
                };
                self.run(
                    model,
                    &x,
                    y,
                    target.as_ref(),
                    start,
                    &mut best,
                    &mut best_norm,
                );
            }
        }
        (best, best_norm)
    }

    /// Adversarial examples within ε: (points, broken mask), as the other attacks report.
    pub fn perturb<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
    ) -> (Tensor, Tensor) {
        let (best, best_norm) = self.minimal(model, x, y);
        let broken = best_norm.le(self.threat.epsilon * (1.0 + 1e-6));
        (best.where_self(&broadcast(&broken, x), x), broken)
    }

    /// A start inside half the best distance so far (ε where nothing was found).
    fn random_start(&self, x: &Tensor, best_norm: &Tensor) -> Tensor {
        let radius = best_norm.clamp_max(self.threat.epsilon) * 0.5;
        (x + self.threat.random_delta_within(x, &radius)).clamp(0.0, 1.0)
    }

    /// The linearised boundary at `current`: w = ∇(f_c − f_y), b = (f_c − f_y)(current), flattened,
    /// for the target class or, untargeted, the class whose boundary is closest.
    fn linearise<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        current: &Tensor,
        y: &Tensor,
        target: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let input = current.detach().set_requires_grad(true);
        let logits = model.forward_t(&input, false);
        let true_logit = logits.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
        let n = current.size()[0];
        let difference =
            |c: &Tensor| logits.gather(1, &c.unsqueeze(1), false).squeeze_dim(1) - &true_logit;
        if let Some(t) = target {
            let b = difference(t);
            let w = Tensor::run_backward(&[b.sum(Kind::Float)], &[&input], false, false).remove(0);
            return (w.reshape([n, -1]), b.detach());
        }
        let classes = logits.size()[1];
        let dual = self.threat.norm.dual();
        let mut chosen: Option<(Tensor, Tensor, Tensor)> = None;
        for c in 0..classes {
            let class = y.full_like(c);
            let b = difference(&class);
            let w = Tensor::run_backward(&[b.sum(Kind::Float)], &[&input], true, false)
                .remove(0)
                .reshape([n, -1]);
            let b = b.detach();
            // Distance to this boundary; the true class itself is never chosen.
            let distance =
                (b.abs() / (norms(&w, dual) + 1e-12)).masked_fill(&y.eq(c), f64::INFINITY);
            chosen = Some(match chosen {
                None => (distance, w, b),
                Some((d, w0, b0)) => {
                    let closer = distance.lt_tensor(&d);
                    (
                        distance.where_self(&closer, &d),
                        w.where_self(&closer.unsqueeze(1), &w0),
                        b.where_self(&closer, &b0),
                    )
                }
            });
        }
        let (_, w, b) = chosen.expect("at least two classes");
        (w, b)
    }

    #[allow(clippy::too_many_arguments)]
    fn run<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
        target: Option<&Tensor>,
        start: Tensor,
        best: &mut Tensor,
        best_norm: &mut Tensor,
    ) {
        let n = x.size()[0];
        let norm = self.threat.norm;
        let origin = x.reshape([n, -1]);
        let mut current = start;
        for _ in 0..self.iterations {
            let (w, b) = self.linearise(model, &current, y, target);
            let here = current.reshape([n, -1]);
            let to_current = project_onto_hyperplane(norm, &here, &w, &(-&b));
            let shift = (&w * (&here - &origin)).sum_dim_intlist(&[1i64][..], false, Kind::Float);
            let to_origin = project_onto_hyperplane(norm, &origin, &w, &(-&b + shift));
            let (a1, a2) = (norms(&to_current, norm), norms(&to_origin, norm));
            let alpha = (&a1 / (&a1 + &a2 + 1e-12))
                .clamp(0.0, ALPHA_MAX)
                .unsqueeze(1);
            let keep: Tensor = 1.0 - &alpha;
            let moved = ((&here + &to_current * ETA) * &keep
                + (&origin + &to_origin * ETA) * &alpha)
                .clamp(0.0, 1.0);
            let moved = moved.view(x.size().as_slice());
            let wrong = tch::no_grad(|| model.forward_t(&moved, false))
                .argmax(-1, false)
                .ne_tensor(y);
            let distance = norms(&(&moved - x), norm);
            let better = wrong.logical_and(&distance.lt_tensor(best_norm));
            *best = moved.where_self(&broadcast(&better, x), best);
            *best_norm = distance.where_self(&better, best_norm);
            let back = x * (1.0 - BETA) + &moved * BETA;
            current = back.where_self(&broadcast(&wrong, x), &moved).detach();
        }
    }
}
