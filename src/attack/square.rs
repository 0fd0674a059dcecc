//! The Square attack (Andriushchenko et al., 2020): a score-based random search that needs no
//! gradients. It minimises the margin z_y − max_{j≠y} z_j, accepting a random change only when it
//! lowers the margin, until the point is misclassified or the query budget is spent. Changes live
//! in one square window (shared by the batch, new values per sample and channel) whose side
//! follows the fraction p of the image, p = p_init halved at iterations 10, 50, 200, 500, 1000,
//! 2000, 4000, 6000 and 8000 of a 10,000-query schedule (rescaled to the budget).
//!
//! ℓ∞: start from vertical stripes of ±ε; a change sets the window to ±ε per channel.
//! ℓ2: start from a grid of "pseudo-Gaussian" blocks (sums of concentric rectangles weighted
//! 1/(k+1)², two halves of opposite sign) with random signs, scaled to norm ε; a change moves the
//! perturbation mass of a second window into the first, adds a fresh pseudo-Gaussian block there
//! and rescales so the total norm stays ε.

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Device, IndexOp, Kind, Tensor};

use super::threat::{Outcome, Threat, broadcast, margin, norms};
use crate::error::{Error, Result};
use crate::theory::norm::Norm;

/// Square settings (AutoAttack's: 5,000 queries, p_init 0.8, 1 restart).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Square {
    pub threat: Threat,
    pub queries: usize,
    pub p_init: f64,
    pub restarts: usize,
}

/// The fraction of the image a window covers at iteration `i` of `queries`.
pub fn window_fraction(p_init: f64, i: usize, queries: usize) -> f64 {
    let at = (i as f64 / queries as f64 * 10_000.0) as usize;
    let halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
        .iter()
        .filter(|&&t| at > t)
        .count();
    p_init / f64::powi(2.0, halvings as i32)
}

/// Weights of concentric rectangles centred in an `rows × cols` block, 1/(k+1)² for the k-th
/// ring from the centre, normalised to unit ℓ2 norm.
fn concentric(rows: i64, cols: i64, device: Device) -> Tensor {
    let (cr, cc) = ((rows - 1) / 2, (cols - 1) / 2);
    let r = Tensor::arange(rows, (Kind::Float, device)).unsqueeze(1);
    let c = Tensor::arange(cols, (Kind::Float, device)).unsqueeze(0);
    // Ring index: Chebyshev distance from the centre cell.
    let ring = (r - cr as f64).abs().maximum(&(c - cc as f64).abs());
    // Cell in ring k lies inside rectangles k, k+1, …, so its weight is Σ_{j ≥ k} 1/(j+1)².
    let rings = rows.max(cols);
    let mut weight = ring.zeros_like();
    for j in 0..rings {
        weight += ring.le(j as f64).to_kind(Kind::Float) / ((j + 1) * (j + 1)) as f64;
    }
    &weight / weight.square().sum(Kind::Float).sqrt()
}

/// A unit-norm `s × s` block: a concentric block on top, its negative below, randomly transposed.
fn pseudo_gaussian(s: i64, device: Device) -> Tensor {
    let half = s / 2;
    let top = concentric(half.max(1), s, device);
    let bottom = -concentric((s - half).max(1), s, device);
    let block = if half == 0 {
        bottom
    } else {
        Tensor::cat(&[top, bottom], 0)
    };
    let block = &block / block.square().sum(Kind::Float).sqrt();
    if bool::try_from(Tensor::rand([1], (Kind::Float, device)).lt(0.5).i(0)).unwrap_or(false) {
        block.tr()
    } else {
        block
    }
}

/// ±1 per sample and channel, shaped (N, C, 1, 1).
fn random_signs(n: i64, c: i64, device: Device) -> Tensor {
    Tensor::randint(2, [n, c, 1, 1], (Kind::Float, device)) * 2.0 - 1.0
}

fn random_corner(limit: i64, device: Device) -> i64 {
    i64::try_from(Tensor::randint(limit.max(1), [1], (Kind::Int64, device)).i(0)).unwrap_or(0)
}

impl Square {
    /// Range checks under `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        self.threat
            .validate_attack(field, ("queries", "query", self.queries), self.restarts)?;
        if !(self.p_init > 0.0 && self.p_init <= 1.0) {
            return Err(Error::invalid(
                format!("{field}.p_init"),
                format!("a fraction in (0, 1], got {}", self.p_init),
            ));
        }
        Ok(())
    }

    /// Adversarial examples for NCHW `x`: (points, broken mask).
    pub fn perturb<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
    ) -> (Tensor, Tensor) {
        let x = x.detach();
        let mut outcome = Outcome::unbroken(&x);
        for _ in 0..self.restarts {
            if !outcome.attack_open(|open| {
                tch::no_grad(|| self.run(model, &x.index_select(0, open), &y.index_select(0, open)))
            }) {
                break;
            }
        }
        (outcome.adversarial, outcome.broken)
    }

    fn margins<M: ModuleT + ?Sized>(model: &M, x: &Tensor, y: &Tensor) -> Tensor {
        margin(&model.forward_t(x, false), y)
    }

    /// The starting perturbation, already inside the ball and the box.
    fn start(&self, x: &Tensor) -> Tensor {
        let [n, c, h, w] = x.size()[..] else {
            unreachable!("NCHW checked by the caller")
        };
        let eps = self.threat.epsilon;
        let delta = match self.threat.norm {
            Norm::Linf => {
                (Tensor::randint(2, [n, c, 1, w], (Kind::Float, x.device())) * 2.0 - 1.0)
                    .expand([n, c, h, w], false)
                    * eps
            }
            _ => {
                let s = (h / 5).max(1);
                let delta = x.zeros_like();
                let (top, left) = ((h - 5 * s) / 2, (w - 5 * s) / 2);
                for bi in 0..h / s {
                    for bj in 0..w / s {
                        let (r, col) = (top + bi * s, left + bj * s);
                        if r + s > h || col + s > w || r < 0 || col < 0 {
                            continue;
                        }
                        let block = pseudo_gaussian(s, x.device()).view([1, 1, s, s])
                            * random_signs(n, c, x.device());
                        let mut window = delta.i((.., .., r..r + s, col..col + s));
                        window += block;
                    }
                }
                &delta / broadcast(&(norms(&delta, Norm::L2) + 1e-12), &delta) * eps
            }
        };
        (x + delta).clamp(0.0, 1.0) - x
    }

    fn run<M: ModuleT + ?Sized>(&self, model: &M, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let [_, c, h, w] = x.size()[..] else {
            unreachable!("NCHW")
        };
        let device = x.device();
        let mut best = x + self.start(x);
        let mut best_margin = Self::margins(model, &best, y);
        for i in 1..self.queries {
            let open = best_margin.gt(0.0).nonzero().squeeze_dim(1);
            let m = open.size()[0];
            if m == 0 {
                break;
            }
            let (xo, bo) = (x.index_select(0, &open), best.index_select(0, &open));
            let p = window_fraction(self.p_init, i, self.queries);
            let candidate = match self.threat.norm {
                Norm::Linf => {
                    let s = ((p * (h * w) as f64).sqrt().round() as i64).clamp(1, h - 1);
                    let (r, col) = (
                        random_corner(h - s + 1, device),
                        random_corner(w - s + 1, device),
                    );
                    let delta = &bo - &xo;
                    let mut window = delta.i((.., .., r..r + s, col..col + s));
                    window.copy_(
                        &(random_signs(m, c, device) * self.threat.epsilon)
                            .expand([m, c, s, s], false),
                    );
                    (&xo + delta.clamp(-self.threat.epsilon, self.threat.epsilon)).clamp(0.0, 1.0)
                }
                _ => self.l2_candidate(&xo, &bo, p),
            };
            let new_margin = Self::margins(model, &candidate, &y.index_select(0, &open));
            let better = new_margin.lt_tensor(&best_margin.index_select(0, &open));
            let kept = candidate.where_self(&broadcast(&better, &candidate), &bo);
            best = best.index_copy(0, &open, &kept);
            best_margin = best_margin.index_copy(
                0,
                &open,
                &new_margin.where_self(&better, &best_margin.index_select(0, &open)),
            );
        }
        (best, best_margin.lt(0.0))
    }

    /// One ℓ2 proposal for the open samples `xo` at current points `bo`.
    fn l2_candidate(&self, xo: &Tensor, bo: &Tensor, p: f64) -> Tensor {
        let [m, c, h, w] = xo.size()[..] else {
            unreachable!("NCHW")
        };
        let device = xo.device();
        let eps = self.threat.epsilon;
        let mut s = ((p * (h * w) as f64).sqrt().round() as i64)
            .max(3)
            .min(h.min(w));
        if s % 2 == 0 && s < h.min(w) {
            s += 1;
        }
        let delta = bo - xo;
        let (r1, c1) = (
            random_corner(h - s + 1, device),
            random_corner(w - s + 1, device),
        );
        let (r2, c2) = (
            random_corner(h - s + 1, device),
            random_corner(w - s + 1, device),
        );
        let window = |t: &Tensor, r: i64, col: i64| t.i((.., .., r..r + s, col..col + s));
        let both = delta.zeros_like();
        let _ = window(&both, r1, c1).fill_(1.0);
        let _ = window(&both, r2, c2).fill_(1.0);
        // Mass available to the first window: what the two windows hold plus any slack to ε.
        let held = norms(&(&delta * &both), Norm::L2);
        let slack = (eps * eps - norms(&delta, Norm::L2).square()).clamp_min(0.0);
        let budget = (held.square() + slack).sqrt();
        let old = window(&delta, r1, c1);
        let old_unit = &old / broadcast(&(norms(&old, Norm::L2) + 1e-12), &old);
        let fresh =
            pseudo_gaussian(s, device).view([1, 1, s, s]) * random_signs(m, c, device) + old_unit;
        let fresh = &fresh / broadcast(&(norms(&fresh, Norm::L2) + 1e-12), &fresh)
            * broadcast(&budget, &fresh);
        let proposal = delta.copy();
        let _ = window(&proposal, r2, c2).fill_(0.0);
        window(&proposal, r1, c1).copy_(&fresh);
        let scale = (norms(&proposal, Norm::L2) + 1e-12)
            .reciprocal()
            .multiply_scalar(eps)
            .clamp_max(1.0);
        (xo + &proposal * broadcast(&scale, &proposal)).clamp(0.0, 1.0)
    }
}
