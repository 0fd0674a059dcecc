//! Auto-PGD (Croce & Hein, 2020, Algorithm 1): PGD with momentum and a step size that halves at
//! checkpoints where progress stalls, so it needs no step-size tuning. APGD-CE ascends the
//! cross-entropy; APGD-T ascends the targeted DLR loss towards each of the classes ranked
//! 2…(targets+1) by the clean logits, one run per target on the points still robust.
//!
//! Per sample: η⁽⁰⁾ = 2ε; x⁽¹⁾ = P(x⁽⁰⁾ + η∇̂); then z = P(x⁽ᵏ⁾ + η∇̂f(x⁽ᵏ⁾)) and
//! x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α(z − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)) with α = 0.75, where ∇̂ is the
//! steepest-ascent direction of the norm and P the projection onto the ball and the box. At the
//! checkpoints wⱼ = ⌈pⱼ N⌉ (p₀ = 0, p₁ = 0.22, pⱼ₊₁ = pⱼ + max(pⱼ − pⱼ₋₁ − 0.03, 0.06)) η is
//! halved and the iterate reset to the best point when (1) fewer than ρ = 0.75 of the steps since
//! the last checkpoint increased the loss, or (2) η was not halved at the last checkpoint and the
//! best loss has not moved since. A point counts as broken as soon as any iterate misclassifies.

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

use super::threat::{
    Outcome, Threat, broadcast, dlr_loss, misclassified, ranked_class, target_ranks,
    validate_targets,
};
use crate::error::Result;

/// Which loss APGD ascends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApgdLoss {
    /// Cross-entropy (APGD-CE).
    CrossEntropy,
    /// Untargeted difference of logits ratio (APGD-DLR).
    Dlr,
    /// Targeted DLR towards each of `targets` runner-up classes (APGD-T).
    TargetedDlr { targets: usize },
}

/// APGD settings (AutoAttack's: 100 iterations, 1 restart; 9 targets for APGD-T).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Apgd {
    pub threat: Threat,
    pub loss: ApgdLoss,
    pub iterations: usize,
    pub restarts: usize,
}

const MOMENTUM: f64 = 0.75;
const RHO: f64 = 0.75;

/// The iterations wⱼ at which the step size may be halved: the first after ⌊0.22 N⌋ iterations,
/// then intervals shrinking by ⌊0.03 N⌋ down to at least ⌊0.06 N⌋ (each at least 1) — the
/// paper's pⱼ₊₁ = pⱼ + max(pⱼ − pⱼ₋₁ − 0.03, 0.06) in whole iterations.
pub fn checkpoints(iterations: usize) -> Vec<usize> {
    let whole = |fraction: f64| ((fraction * iterations as f64) as usize).max(1);
    let (mut interval, shrink, smallest) = (whole(0.22), whole(0.03), whole(0.06));
    let mut at = interval;
    let mut w = Vec::new();
    while at <= iterations {
        w.push(at);
        interval = interval.saturating_sub(shrink).max(smallest);
        at += interval;
    }
    w
}

impl Apgd {
    /// Range checks under `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        self.threat.validate_attack(
            field,
            ("iterations", "iteration", self.iterations),
            self.restarts,
        )?;
        validate_targets(&format!("{field}.loss"), self.targets())
    }

    /// The number of target classes of the targeted loss (`None` otherwise).
    fn targets(&self) -> Option<usize> {
        match self.loss {
            ApgdLoss::TargetedDlr { targets } => Some(targets),
            _ => None,
        }
    }

    /// Adversarial examples for `(x, y)`: for each sample the first misclassified iterate found,
    /// otherwise the last restart's highest-loss point. Returns (examples, broken mask).
    pub fn perturb<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
    ) -> (Tensor, Tensor) {
        let x = x.detach();
        let mut outcome = Outcome::unbroken(&x);
        let clean_logits = tch::no_grad(|| model.forward_t(&x, false));
        for rank in target_ranks(self.targets(), clean_logits.size()[1]) {
            let target = rank.map(|r| ranked_class(&clean_logits, r));
            for _ in 0..self.restarts {
                let attacked = outcome.attack_open(|open| {
                    let pick = |t: &Tensor| t.index_select(0, open);
                    self.run(
                        model,
                        &pick(&x),
                        &pick(y),
                        target.as_ref().map(pick).as_ref(),
                    )
                });
                if !attacked {
                    return (outcome.adversarial, outcome.broken);
                }
            }
        }
        (outcome.adversarial, outcome.broken)
    }

    fn loss(&self, logits: &Tensor, y: &Tensor, target: Option<&Tensor>) -> Tensor {
        match self.loss {
            ApgdLoss::CrossEntropy => {
                logits.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
            }
            ApgdLoss::Dlr => dlr_loss(logits, y, None),
            ApgdLoss::TargetedDlr { .. } => dlr_loss(logits, y, target),
        }
    }

    /// Per-sample loss, its gradient and whether the point is misclassified.
    fn evaluate<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
        target: Option<&Tensor>,
    ) -> (Tensor, Tensor, Tensor) {
        let input = x.detach().set_requires_grad(true);
        let logits = model.forward_t(&input, false);
        let loss = self.loss(&logits, y, target);
        let grad =
            Tensor::run_backward(&[loss.sum(Kind::Float)], &[&input], false, false).remove(0);
        (loss.detach(), grad, misclassified(&logits.detach(), y))
    }

    /// One restart from a random point of the ball: (first misclassified iterate or the
    /// highest-loss point, misclassified mask).
    fn run<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
        target: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let threat = self.threat;
        let n = x.size()[0];
        let per_sample = |v: &Tensor, like: &Tensor| broadcast(v, like);
        let mut current = x + threat.project(x, &threat.random_delta(x));
        let (mut loss, mut grad, hit) = self.evaluate(model, &current, y, target);
        let mut found = current.shallow_clone();
        let mut ever = hit.shallow_clone();
        let (mut best, mut best_loss, mut best_grad) = (
            current.shallow_clone(),
            loss.shallow_clone(),
            grad.shallow_clone(),
        );
        let mut step = Tensor::full([n], 2.0 * threat.epsilon, (Kind::Float, x.device()));
        let mut previous = current.shallow_clone();
        let mut increases = Tensor::zeros([n], (Kind::Float, x.device()));
        let mut best_loss_at_checkpoint = best_loss.shallow_clone();
        let mut halved_at_checkpoint = Tensor::zeros([n], (Kind::Bool, x.device()));
        let checkpoints = checkpoints(self.iterations);
        let mut since_checkpoint = 0usize;
        for k in 0..self.iterations {
            let z = x + threat.project(
                x,
                &(&current - x + threat.steepest(&grad) * per_sample(&step, x)),
            );
            let next = if k == 0 {
                z
            } else {
                let moved = &current
                    + (&z - &current) * MOMENTUM
                    + (&current - &previous) * (1.0 - MOMENTUM);
                x + threat.project(x, &(moved - x))
            };
            previous = current;
            current = next;
            let previous_loss = loss;
            let hit;
            (loss, grad, hit) = self.evaluate(model, &current, y, target);
            let first = hit.logical_and(&ever.logical_not());
            found = current.where_self(&per_sample(&first, x), &found);
            ever = ever.logical_or(&hit);
            increases += loss.gt_tensor(&previous_loss).to_kind(Kind::Float);
            let improved = loss.gt_tensor(&best_loss);
            best = current.where_self(&per_sample(&improved, x), &best);
            best_grad = grad.where_self(&per_sample(&improved, x), &best_grad);
            best_loss = loss.where_self(&improved, &best_loss);
            since_checkpoint += 1;
            if checkpoints.contains(&(k + 1)) {
                let few_increases = increases.lt(RHO * since_checkpoint as f64);
                let stalled = halved_at_checkpoint
                    .logical_not()
                    .logical_and(&best_loss.le_tensor(&best_loss_at_checkpoint));
                let halve = few_increases.logical_or(&stalled);
                step = (&step * 0.5).where_self(&halve, &step);
                let reset = per_sample(&halve, x);
                current = best.where_self(&reset, &current);
                previous = current.where_self(&reset, &previous);
                grad = best_grad.where_self(&reset, &grad);
                halved_at_checkpoint = halve;
                best_loss_at_checkpoint = best_loss.shallow_clone();
                increases = increases.zero_();
                since_checkpoint = 0;
            }
        }
        (found.where_self(&per_sample(&ever, x), &best), ever)
    }
}
