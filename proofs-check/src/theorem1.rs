//! Theorem 1 (Appendix A.1): Lemma 3 and equations (1)–(7), on empirical measures with exact OT.
//!
//! D is the real cloud, D~ the proxy; D' and D~' their nearest adversarial examples.

use proxyrobust::theory::transport::{
    LabeledCloud, empirical_conditional_wasserstein, wasserstein,
};

use crate::check::{Proof, Relation, Step};
use crate::instance::{Instance, instance, robustness};

const TOL: f64 = 1e-9;

pub fn proof() -> Proof {
    use Relation::*;
    Proof {
        title: "Theorem 1 (A.1)",
        steps: vec![
            Step::new(
                "L3",
                "Lemma 3: Rob(h,D) = cwd(D,D'), Rob(h,D~) = cwd(D~,D~')",
                Equal,
                TOL,
            ),
            Step::new(
                "(1)",
                "Rob(h,D) ≤ cost of the optimal coupling J*_y of D|y, D'|y (each pair: d(x,x') ≥ dist(x))",
                AtMost,
                TOL,
            ),
            Step::new(
                "(2)",
                "cwd(D,D') ≤ cost of the nearest-adversary coupling = Rob(h,D)",
                AtMost,
                TOL,
            ),
            Step::new(
                "(3)",
                "cwd(D~,D~') ≤ cwd(D~,D') and cwd(D,D') ≤ cwd(D,D~')",
                AtMost,
                TOL,
            ),
            Step::new("(4)", "cwd(D~,D') ≤ cwd(D~,D) + cwd(D,D')", AtMost, TOL),
            Step::new("(5)", "Rob(h,D~) ≤ cwd(D,D~) + Rob(h,D)", AtMost, TOL),
            Step::new("(6)", "Rob(h,D) ≤ cwd(D,D~) + Rob(h,D~)", AtMost, TOL),
            Step::new("(7)", "|Rob(h,D) − Rob(h,D~)| ≤ cwd(D,D~)", AtMost, TOL),
        ],
    }
}

fn adversarial(t: &Instance, s: &LabeledCloud) -> LabeledCloud {
    s.with_points(
        t.classifier
            .nearest_adversarial(s.points(), s.labels(), t.norm)
            .expect("reachable classes"),
    )
    .expect("valid cloud")
}

pub fn check(proof: &mut Proof, seed: u64, case: usize) {
    let t = instance(seed, case);
    let ctx = || t.description.clone();
    let cwd = |a: &LabeledCloud, b: &LabeledCloud| {
        empirical_conditional_wasserstein(a, b, 1, t.norm)
            .expect("same class counts")
            .cwd
    };
    let (d, dt) = (&t.real, &t.proxy);
    let (d_adv, dt_adv) = (adversarial(&t, d), adversarial(&t, dt));
    let (rob, rob_t) = (
        robustness(&t.classifier, d, t.norm),
        robustness(&t.classifier, dt, t.norm),
    );

    proof.step("L3").record(rob, cwd(d, &d_adv), ctx);
    proof.step("L3").record(rob_t, cwd(dt, &dt_adv), ctx);

    // (1): pair by pair along the optimal plan of each class, d(x, x') ≥ dist(x), hence the sum.
    let probs = d.class_probs();
    let mut optimal_cost = 0.0;
    for (y, p) in probs.iter().enumerate() {
        let (Some(a), Some(b)) = (d.class(y), d_adv.class(y)) else {
            continue;
        };
        let plan = wasserstein(&a, &b, 1, t.norm).expect("same dimension").plan;
        let dist = t
            .classifier
            .distances_to_boundary(a.points(), &vec![y; a.len()], t.norm);
        let mut class_cost = 0.0;
        for &(i, j, w) in &plan {
            let diff: Vec<f64> = (0..a.dim())
                .map(|c| a.points()[(i, c)] - b.points()[(j, c)])
                .collect();
            let cost = t.norm.of(&diff);
            proof.step("(1)").record(dist[i], cost, ctx);
            class_cost += w * cost;
        }
        optimal_cost += p * class_cost;
    }
    proof.step("(1)").record(rob, optimal_cost, ctx);
    // (2): the coupling x ↦ its nearest adversarial example costs exactly Rob(h, D).
    proof.step("(2)").record(cwd(d, &d_adv), rob, ctx);
    proof
        .step("(3)")
        .record(cwd(dt, &dt_adv), cwd(dt, &d_adv), ctx);
    proof
        .step("(3)")
        .record(cwd(d, &d_adv), cwd(d, &dt_adv), ctx);
    proof
        .step("(4)")
        .record(cwd(dt, &d_adv), cwd(dt, d) + cwd(d, &d_adv), ctx);
    let shift = cwd(d, dt);
    proof.step("(5)").record(rob_t, shift + rob, ctx);
    proof.step("(6)").record(rob, shift + rob_t, ctx);
    proof.step("(7)").record((rob - rob_t).abs(), shift, ctx);
}
