//! Theorem 6 (Appendix A.3): the coupling `Ĵ_y = (1 − p)·J*_y + p·(x, x)` between `D|y` and the
//! mixture `p·D|y + (1 − p)·D~|y`.

use proxyrobust::theory::mixture::mixture_bound;
use proxyrobust::theory::transport::wasserstein;
use rand::RngExt;

use crate::check::{Proof, Relation, Step};
use crate::instance::{instance, rng_for};

const TOL: f64 = 1e-9;

pub fn proof() -> Proof {
    use Relation::*;
    Proof {
        title: "Theorem 6 (A.3)",
        steps: vec![
            Step::new(
                "marginals",
                "Ĵ_y has marginals D|y and p·D|y + (1 − p)·D~|y",
                Equal,
                TOL,
            ),
            Step::new("cost", "cost(Ĵ_y) = (1 − p)·cost(J*_y)", Equal, TOL),
            Step::new(
                "optimal≤",
                "cwd(D, D^) ≤ Σ_y Pr[y]·cost(Ĵ_y) = (1 − p)·cwd(D, D~)",
                AtMost,
                TOL,
            ),
        ],
    }
}

pub fn check(proof: &mut Proof, seed: u64, case: usize) {
    let t = instance(seed ^ 0x6, case);
    let p = rng_for(seed ^ 0x66, case).random::<f64>();
    let ctx = || format!("{}, p = {p:.4}", t.description);
    let probs = t.real.class_probs();
    let mut coupling_cost = 0.0;
    for (y, prob) in probs.iter().enumerate() {
        let (Some(a), Some(b)) = (t.real.class(y), t.proxy.class(y)) else {
            continue;
        };
        let optimal = wasserstein(&a, &b, 1, t.norm).unwrap();
        let mixture = a.mixture(&b, p).unwrap();
        let n = a.len();
        // Ĵ: real i → mixture i (its own copy) with mass p/n; real i → mixture n + j with (1 − p)·J*_ij.
        let mut entries: Vec<(usize, usize, f64)> = (0..n).map(|i| (i, i, p / n as f64)).collect();
        entries.extend(
            optimal
                .plan
                .iter()
                .map(|&(i, j, w)| (i, n + j, (1.0 - p) * w)),
        );
        let mut rows = vec![0.0; n];
        let mut cols = vec![0.0; mixture.len()];
        let mut cost = 0.0;
        for &(i, j, w) in &entries {
            rows[i] += w;
            cols[j] += w;
            let diff: Vec<f64> = (0..a.dim())
                .map(|c| a.points()[(i, c)] - mixture.points()[(j, c)])
                .collect();
            cost += w * t.norm.of(&diff);
        }
        for (got, want) in rows
            .iter()
            .zip(a.weights())
            .chain(cols.iter().zip(mixture.weights()))
        {
            proof.step("marginals").record(*got, *want, ctx);
        }
        proof
            .step("cost")
            .record(cost, (1.0 - p) * optimal.cost, ctx);
        coupling_cost += prob * cost;
    }
    let bound = mixture_bound(&t.real, &t.proxy, p, t.norm).unwrap();
    proof
        .step("optimal≤")
        .record(bound.cwd_mixture, coupling_cost, ctx);
    proof
        .step("optimal≤")
        .record(coupling_cost, bound.bound, ctx);
}
