//! Theorem 2 (Appendix A.2): Lemma 4, inequality (8) and the integration by parts, then
//! Lemma 5 with equations (9)–(12) on concentric spheres.
//!
//! Discriminators are radial thresholds (`proxyrobust::theory::discrimination`): Lemma 4 holds for
//! every discriminator, and the best radial one is a lower bound on `Racc*`, so each checked
//! inequality is a consequence of the written one.

use faer::Mat;
use proxyrobust::theory::discrimination::{RadialThreshold, epsilon_grid, trapezoid};
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::sphere::ConcentricSpheres;
use proxyrobust::theory::transport::{EmpiricalMeasure, wasserstein};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

use crate::check::{Proof, Relation, Step};
use crate::instance::rng_for;

const TOL: f64 = 1e-9;
const GRID: usize = 40;

pub fn proof() -> Proof {
    use Relation::*;
    Proof {
        title: "Theorem 2 (A.2)",
        steps: vec![
            Step::new(
                "L4",
                "Lemma 4: Racc_{ε/2}(σ) ≤ ½ + Pr_J[d > ε]/2 for any coupling J and discriminator σ",
                AtMost,
                TOL,
            ),
            Step::new(
                "(8)",
                "Racc*_ε − ½ ≤ Pr_J*[d > 2ε]/2 at every ε",
                AtMost,
                TOL,
            ),
            Step::new("parts", "∫_0^∞ Pr_J*[d > ε] dε = E_J*[d] = cwd", Equal, TOL),
            Step::new(
                "ARC≤",
                "ARC ≤ cwd/4 (trapezoid rule on a 2000-step ε grid)",
                AtMost,
                1e-3,
            ),
            Step::new(
                "(9)",
                "spheres: Racc*_{ε/2} = 1 for ε < |r − r~|",
                Equal,
                TOL,
            ),
            Step::new(
                "(10)",
                "spheres: Racc*_{ε/2} = ½ for ε ≥ |r − r~|",
                Equal,
                TOL,
            ),
            Step::new(
                "(11)(12)",
                "spheres: the radial coupling moves every point by exactly |r − r~|",
                Equal,
                TOL,
            ),
            Step::new(
                "J*",
                "spheres: the radial coupling is optimal (its cost = exact W1)",
                Equal,
                TOL,
            ),
            Step::new(
                "L5",
                "Lemma 5: Racc*_{ε/2} = ½ + Pr_J*[d > ε]/2 on the grid",
                Equal,
                TOL,
            ),
        ],
    }
}

fn norms(x: &Mat<f64>, norm: Norm) -> Vec<f64> {
    (0..x.nrows())
        .map(|i| norm.of(&x.row(i).iter().copied().collect::<Vec<_>>()))
        .collect()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Distances `d(x_i, y_π(i))` of the coupling given as a permutation.
fn coupled_distances(x: &Mat<f64>, y: &Mat<f64>, pairs: &[(usize, usize)], norm: Norm) -> Vec<f64> {
    pairs
        .iter()
        .map(|&(i, j)| {
            norm.of(&(0..x.ncols())
                .map(|c| x[(i, c)] - y[(j, c)])
                .collect::<Vec<_>>())
        })
        .collect()
}

fn survival(distances: &[f64], eps: f64) -> f64 {
    distances.iter().filter(|d| **d > eps).count() as f64 / distances.len() as f64
}

pub fn check(proof: &mut Proof, seed: u64, case: usize) {
    let mut rng = rng_for(seed ^ 0x2, case);
    let norm = if case.is_multiple_of(2) {
        Norm::L2
    } else {
        Norm::Linf
    };
    let (n, d) = (rng.random_range(2..12), rng.random_range(1..5));
    let ctx = || format!("seed {seed}, case {case}: n={n}, d={d}, {}", norm.name());
    let mut draw = || -> f64 { StandardNormal.sample(&mut rng) };
    let x = Mat::from_fn(n, d, |_, _| draw());
    let shift = 2.0 * draw();
    let y = Mat::from_fn(n, d, |_, _| 1.5 * draw() + shift);
    let (rx, ry) = (norms(&x, norm), norms(&y, norm));
    let (sx, sy) = (sorted(&rx), sorted(&ry));

    let optimal = wasserstein(
        &EmpiricalMeasure::uniform(x.clone()).unwrap(),
        &EmpiricalMeasure::uniform(y.clone()).unwrap(),
        1,
        norm,
    )
    .unwrap();
    let optimal_pairs: Vec<(usize, usize)> = optimal.plan.iter().map(|&(i, j, _)| (i, j)).collect();
    let mut permutation: Vec<usize> = (0..n).collect();
    permutation.shuffle(&mut rng);
    let random_pairs: Vec<(usize, usize)> = permutation.iter().copied().enumerate().collect();
    let optimal_d = coupled_distances(&x, &y, &optimal_pairs, norm);
    let random_d = coupled_distances(&x, &y, &random_pairs, norm);
    let max_d = optimal_d
        .iter()
        .chain(&random_d)
        .copied()
        .fold(0.0, f64::max);

    // Lemma 4 for random radial discriminators and for the best one, under both couplings.
    let eps_grid = epsilon_grid(1.2 * max_d.max(1e-9), GRID);
    for &eps in &eps_grid {
        let threshold = rx.iter().chain(&ry).copied().fold(0.0, f64::max) * rng.random::<f64>();
        let candidates = [
            RadialThreshold {
                threshold,
                outward: rng.random::<bool>(),
            },
            RadialThreshold::fit(&sx, &sy, eps / 2.0),
        ];
        for sigma in candidates {
            let racc = sigma.robust_accuracy(&rx, &ry, eps / 2.0);
            for distances in [&optimal_d, &random_d] {
                proof
                    .step("L4")
                    .record(racc, 0.5 + survival(distances, eps) / 2.0, ctx);
            }
        }
        let best = RadialThreshold::fit(&sx, &sy, eps).robust_accuracy(&rx, &ry, eps);
        proof
            .step("(8)")
            .record(best - 0.5, survival(&optimal_d, 2.0 * eps) / 2.0, ctx);
    }
    // ∫ Pr[d > ε] dε of the empirical survival function, exactly: a sum over the sorted distances.
    let sd = sorted(&optimal_d);
    let integral: f64 = sd
        .iter()
        .enumerate()
        .map(|(k, v)| (v - if k == 0 { 0.0 } else { sd[k - 1] }) * (n - k) as f64 / n as f64)
        .sum();
    proof.step("parts").record(integral, optimal.distance, ctx);
    let fine = epsilon_grid(max_d.max(1e-9), GRID * 50);
    let excess: Vec<f64> = fine
        .iter()
        .map(|&e| RadialThreshold::fit(&sx, &sy, e).robust_accuracy(&rx, &ry, e) - 0.5)
        .collect();
    proof
        .step("ARC≤")
        .record(trapezoid(&fine, &excess), optimal.distance / 4.0, ctx);

    check_spheres(proof, seed, case);
}

/// Lemma 5 and (9)–(12): D on the sphere of radius r, D~ its radial image at radius r~.
fn check_spheres(proof: &mut Proof, seed: u64, case: usize) {
    let mut rng = rng_for(seed ^ 0x5, case);
    let norm = if case.is_multiple_of(2) {
        Norm::L2
    } else {
        Norm::Linf
    };
    let (n, d) = (rng.random_range(2..12), rng.random_range(1..6));
    let (r, r_tilde) = (
        0.5 + 2.0 * rng.random::<f64>(),
        0.5 + 2.0 * rng.random::<f64>(),
    );
    let ctx = || {
        format!(
            "seed {seed}, case {case}: spheres r={r:.4}, r~={r_tilde:.4}, n={n}, d={d}, {}",
            norm.name()
        )
    };
    let spheres = ConcentricSpheres::new(d, r, r_tilde, norm).unwrap();
    let x = spheres.sample(n, r, &mut rng);
    let y = Mat::from_fn(n, d, |i, j| x[(i, j)] * r_tilde / r);
    let gap = spheres.conditional_wasserstein();
    let pairs: Vec<(usize, usize)> = (0..n).map(|i| (i, i)).collect();
    let radial = coupled_distances(&x, &y, &pairs, norm);
    for &dist in &radial {
        proof.step("(11)(12)").record(dist, gap, ctx);
    }
    let exact = wasserstein(
        &EmpiricalMeasure::uniform(x.clone()).unwrap(),
        &EmpiricalMeasure::uniform(y.clone()).unwrap(),
        1,
        norm,
    )
    .unwrap()
    .distance;
    proof
        .step("J*")
        .record(exact, radial.iter().sum::<f64>() / n as f64, ctx);
    let (rx, ry) = (norms(&x, norm), norms(&y, norm));
    let (sx, sy) = (sorted(&rx), sorted(&ry));
    for k in 0..GRID {
        // Grid points away from the jump at |r − r~|, where round-off in the norms decides.
        let eps = 2.0 * gap * (k as f64 + 0.5) / GRID as f64;
        let racc = RadialThreshold::fit(&sx, &sy, eps / 2.0).robust_accuracy(&rx, &ry, eps / 2.0);
        if eps < gap {
            proof.step("(9)").record(racc, 1.0, ctx);
        } else {
            proof.step("(10)").record(racc, 0.5, ctx);
        }
        proof
            .step("L5")
            .record(racc, 0.5 + survival(&radial, eps) / 2.0, ctx);
    }
}
