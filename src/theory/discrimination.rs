//! Robust discrimination between a real and a proxy distribution and the ARC metric
//! (paper Section 2.2, Theorem 2).
//!
//! A discriminator `σ` labels real samples 0 and proxy samples 1; its robust accuracy at radius ε
//! counts a sample as correct only if every point of its ε-ball gets the right label:
//! `Racc_ε(σ) = ½ Pr_D[σ ≡ 0 on Ball_ε(x)] + ½ Pr_D~[σ ≡ 1 on Ball_ε(x)]`.
//! `ARC = ∫_0^∞ (Racc*_ε − ½) dε` with `Racc*` the best discriminator; empirically the integral is
//! the trapezoid rule over an ε grid (footnote 4 of the paper, numpy.trapz semantics).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::gaussian::Gaussian;
use super::norm::Norm;
use crate::error::{Error, Result};

/// `numpy.trapz(y, x)`: `Σ_k (x_{k+1} − x_k)(y_k + y_{k+1})/2` (0 for fewer than two points, as
/// numpy gives; Rust's empty float sum is −0, hence the fold from +0).
pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .fold(0.0, |total, area| total + area)
}

/// `n + 1` equally spaced radii `0, ε_max/n, …, ε_max`.
pub fn epsilon_grid(eps_max: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|k| eps_max * k as f64 / n as f64).collect()
}

/// A radial-threshold discriminator: proxy iff `‖x‖ ≥ t` (`outward`) or `‖x‖ ≤ t` (inward).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RadialThreshold {
    pub threshold: f64,
    pub outward: bool,
}

impl RadialThreshold {
    /// Robust accuracy at radius ε on samples given by their norms. A point of norm `ρ` has
    /// norms `[ρ − ε, ρ + ε]` in its ε-ball (same norm, reverse triangle inequality, attained
    /// along the radius), so for `outward` a real point is robustly 0 iff `ρ + ε < t` and a
    /// proxy point robustly 1 iff `ρ − ε ≥ t`; inward mirrors it.
    pub fn robust_accuracy(&self, real_norms: &[f64], proxy_norms: &[f64], eps: f64) -> f64 {
        let t = self.threshold;
        let (real_ok, proxy_ok) = if self.outward {
            (
                fraction(real_norms, |rho| rho + eps < t),
                fraction(proxy_norms, |rho| rho - eps >= t),
            )
        } else {
            (
                fraction(real_norms, |rho| rho - eps > t),
                fraction(proxy_norms, |rho| rho + eps <= t),
            )
        };
        0.5 * real_ok + 0.5 * proxy_ok
    }

    /// The radial threshold with the best robust accuracy at ε on samples whose norms are given
    /// **sorted ascending**. The training accuracy is a step function of the threshold whose
    /// maxima are attained just where some proxy point stays correct (`t = ρ~_j ∓ ε`) or at ±∞
    /// (accuracy ½); each candidate is scored by binary search, O((n + m) log(n + m)) in all.
    /// Among thresholds with the same training accuracy the one in the middle of the interval
    /// is returned (the largest margin), so held-out points equal to training points up to
    /// round-off are classified alike.
    pub fn fit(real_sorted: &[f64], proxy_sorted: &[f64], eps: f64) -> RadialThreshold {
        let (n, m) = (
            real_sorted.len().max(1) as f64,
            proxy_sorted.len().max(1) as f64,
        );
        let below = |s: &[f64], v: f64| s.partition_point(|x| *x < v);
        let at_most = |s: &[f64], v: f64| s.partition_point(|x| *x <= v);
        let mut best = (
            RadialThreshold {
                threshold: f64::INFINITY,
                outward: true,
            },
            0.5,
        );
        for (j, &rho) in proxy_sorted.iter().enumerate() {
            if j > 0 && proxy_sorted[j - 1] == rho {
                continue;
            }
            // Outward, t ∈ (lower, ρ − ε]: reals with norm < ρ − 2ε and proxies with norm ≥ ρ correct.
            let reals = below(real_sorted, rho - 2.0 * eps);
            let accuracy = 0.5 * reals as f64 / n + 0.5 * (proxy_sorted.len() - j) as f64 / m;
            if accuracy > best.1 {
                let lower = [
                    reals.checked_sub(1).map(|k| real_sorted[k] + eps),
                    j.checked_sub(1).map(|k| proxy_sorted[k] - eps),
                ];
                let lower = lower
                    .into_iter()
                    .flatten()
                    .fold(f64::NEG_INFINITY, f64::max);
                best = (
                    RadialThreshold {
                        threshold: midpoint(lower, rho - eps),
                        outward: true,
                    },
                    accuracy,
                );
            }
            // Inward, t ∈ [ρ + ε, upper): proxies with norm ≤ ρ and reals with norm > ρ + 2ε correct.
            let proxies = at_most(proxy_sorted, rho);
            let first_real = at_most(real_sorted, rho + 2.0 * eps);
            let accuracy =
                0.5 * (real_sorted.len() - first_real) as f64 / n + 0.5 * proxies as f64 / m;
            if accuracy > best.1 {
                let upper = [
                    real_sorted.get(first_real).map(|v| v - eps),
                    proxy_sorted.get(proxies).map(|v| v + eps),
                ];
                let upper = upper.into_iter().flatten().fold(f64::INFINITY, f64::min);
                best = (
                    RadialThreshold {
                        threshold: midpoint(rho + eps, upper),
                        outward: false,
                    },
                    accuracy,
                );
            }
        }
        best.0
    }
}

/// The middle of `[a, b]`, or the infinite end when the interval is unbounded.
fn midpoint(a: f64, b: f64) -> f64 {
    if a.is_infinite() {
        a
    } else if b.is_infinite() {
        b
    } else {
        0.5 * (a + b)
    }
}

fn fraction(values: &[f64], keep: impl Fn(f64) -> bool) -> f64 {
    values.iter().filter(|v| keep(**v)).count() as f64 / values.len().max(1) as f64
}

/// A robust-accuracy curve and its area.
#[derive(Clone, Debug, Serialize)]
pub struct ArcCurve {
    pub eps: Vec<f64>,
    pub robust_accuracy: Vec<f64>,
    /// Trapezoid rule of `robust_accuracy − ½` over `eps`.
    pub arc: f64,
}

impl ArcCurve {
    /// The curve of `robust_accuracy(ε)` over `eps`, and ARC = ∫ (Racc_ε − ½) dε (Section 2.2) by the trapezoid rule.
    pub fn over(eps: Vec<f64>, robust_accuracy: impl Fn(f64) -> f64) -> Self {
        let robust_accuracy: Vec<f64> = eps.iter().map(|&e| robust_accuracy(e)).collect();
        let excess: Vec<f64> = robust_accuracy.iter().map(|a| a - 0.5).collect();
        ArcCurve {
            arc: trapezoid(&eps, &excess),
            eps,
            robust_accuracy,
        }
    }
}

/// Empirical ARC from radial-threshold discriminators: at each ε of the grid the threshold is
/// fitted on the training norms and its robust accuracy measured on the held-out norms. The grid
/// runs from 0 to the spread of the training norms (no radial discriminator can be robust
/// beyond half of it) in `grid` steps.
pub fn radial_arc(
    train: (&[f64], &[f64]),
    test: (&[f64], &[f64]),
    grid: usize,
) -> Result<ArcCurve> {
    if grid == 0 {
        return Err(Error::invalid("grid", "at least one step"));
    }
    if [train.0, train.1, test.0, test.1]
        .iter()
        .any(|s| s.is_empty())
    {
        return Err(Error::invalid(
            "samples",
            "non-empty training and held-out samples of both distributions",
        ));
    }
    let sorted = |s: &[f64]| {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (real, proxy) = (sorted(train.0), sorted(train.1));
    let lo = real[0].min(proxy[0]);
    let hi = real[real.len() - 1].max(proxy[proxy.len() - 1]);
    let eps = epsilon_grid((hi - lo).max(f64::MIN_POSITIVE), grid);
    Ok(ArcCurve::over(eps, |e| {
        RadialThreshold::fit(&real, &proxy, e).robust_accuracy(test.0, test.1, e)
    }))
}

/// Robust accuracy at ε of the ℓ2 linear discriminator "proxy iff `w·x ≥ b`" (`‖w‖2 = 1`) on
/// Gaussian classes: the ε-ball moves `w·x` by at most ε, so
/// `Racc = ½ Φ((b − ε − w·m)/s) + ½ Φ((w·m~ − ε − b)/s~)` with `s² = wᵀ S w`.
fn linear_robust_accuracy(real: (f64, f64), proxy: (f64, f64), b: f64, eps: f64) -> f64 {
    let phi = |z: f64, s: f64| {
        if s > 0.0 {
            Normal::standard().cdf(z / s)
        } else if z > 0.0 {
            1.0
        } else {
            0.0
        }
    };
    0.5 * phi(b - eps - real.0, real.1) + 0.5 * phi(proxy.0 - eps - b, proxy.1)
}

/// ARC of two Gaussians from the best ℓ2-robust linear discriminator among the mean-difference
/// and Fisher directions, with the offset `b` optimised per ε (grid then golden section). Any
/// discriminator's robust accuracy is at most `Racc*`, so `4·ARC` here lower-bounds `4·ARC*`,
/// which Theorem 2 bounds by `cwd` (and the closed-form W2 ≥ W1 bounds that).
pub fn gaussian_linear_arc(real: &Gaussian, proxy: &Gaussian, grid: usize) -> Result<ArcCurve> {
    if real.dim() != proxy.dim() {
        return Err(Error::invalid(
            "dimensions",
            "two Gaussians of the same dimension",
        ));
    }
    let d = real.dim();
    let diff: Vec<f64> = (0..d).map(|i| proxy.mean()[i] - real.mean()[i]).collect();
    let mut directions = vec![diff.clone()];
    let pooled = faer::Mat::from_fn(d, d, |i, j| {
        real.cov()[(i, j)] + proxy.cov()[(i, j)] + if i == j { 1e-12 } else { 0.0 }
    });
    if let Ok(llt) = pooled.llt(faer::Side::Lower) {
        let rhs = faer::Mat::from_fn(d, 1, |i, _| diff[i]);
        let w = faer::linalg::solvers::Solve::solve(&llt, &rhs);
        directions.push((0..d).map(|i| w[(i, 0)]).collect());
    }
    let projected: Vec<((f64, f64), (f64, f64))> = directions
        .iter()
        .filter(|w| Norm::L2.of(w) > 0.0)
        .map(|w| {
            let n = Norm::L2.of(w);
            let w: Vec<f64> = w.iter().map(|v| v / n).collect();
            (project(real, &w), project(proxy, &w))
        })
        .collect();
    if projected.is_empty() {
        return Err(Error::invalid(
            "gaussians",
            "different means (identical means have ARC 0 for every linear discriminator)",
        ));
    }
    let spread = projected
        .iter()
        .map(|((m, s), (mt, st))| (mt - m).abs() + 8.0 * (s + st))
        .fold(0.0, f64::max);
    let eps = epsilon_grid(spread, grid.max(1));
    Ok(ArcCurve::over(eps, |e| {
        projected
            .iter()
            .map(|&(a, b)| best_offset_accuracy(a, b, e))
            .fold(0.5, f64::max)
    }))
}

fn project(g: &Gaussian, w: &[f64]) -> (f64, f64) {
    let mean = w.iter().zip(g.mean()).map(|(a, b)| a * b).sum();
    let s = g.cov();
    let var: f64 = (0..w.len())
        .map(|i| w[i] * (0..w.len()).map(|j| s[(i, j)] * w[j]).sum::<f64>())
        .sum();
    (mean, var.max(0.0).sqrt())
}

/// `max_b` of [`linear_robust_accuracy`]: a grid over the span of the two projected means
/// followed by golden-section refinement around the best grid point.
fn best_offset_accuracy(real: (f64, f64), proxy: (f64, f64), eps: f64) -> f64 {
    let (lo, hi) = (
        real.0.min(proxy.0) - 4.0 * (real.1 + proxy.1),
        real.0.max(proxy.0) + 4.0 * (real.1 + proxy.1),
    );
    let f = |b: f64| linear_robust_accuracy(real, proxy, b, eps);
    let steps = 200;
    let h = (hi - lo) / steps as f64;
    let (mut best_b, mut best) = (lo, f(lo));
    for k in 1..=steps {
        let b = lo + h * k as f64;
        if f(b) > best {
            best = f(b);
            best_b = b;
        }
    }
    let (mut a, mut c) = (best_b - h, best_b + h);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (x1, x2) = (c - ratio * (c - a), a + ratio * (c - a));
        if f(x1) > f(x2) { c = x2 } else { a = x1 }
    }
    best.max(f(0.5 * (a + c)))
}

#[cfg(test)]
mod tests {
    use super::trapezoid;

    /// Values from numpy 2: `np.trapezoid(y, x=x)` on uneven grids, a single point and a curve
    /// that dips below zero.
    #[test]
    fn trapezoid_has_numpy_semantics_on_uneven_grids() {
        let cases: [(&[f64], &[f64], f64); 3] = [
            (&[0.0, 0.1, 0.4, 1.0], &[0.5, 1.0, 0.2, 0.2], 0.375),
            (&[0.2], &[0.3], 0.0),
            (&[0.0, 0.05, 0.3], &[0.1, -0.2, 0.4], 0.0225),
        ];
        for (x, y, expected) in cases {
            assert!((trapezoid(x, y) - expected).abs() < 1e-15, "{x:?} {y:?}");
        }
        // A single radius gives +0 as numpy does (reports print it as 0, not −0).
        assert!(trapezoid(&[0.2], &[0.3]).is_sign_positive());
    }
}
