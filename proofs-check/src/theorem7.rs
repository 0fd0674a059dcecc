//! Theorem 7 (Appendix A.4): the construction `D_α = x + α(x' − x)` and its three facts.

use proxyrobust::theory::transport::empirical_conditional_wasserstein;
use rand::RngExt;

use crate::check::{Proof, Relation, Step};
use crate::instance::{instance, rng_for, robustness};

const TOL: f64 = 1e-9;

pub fn proof() -> Proof {
    use Relation::*;
    Proof {
        title: "Theorem 7 (A.4)",
        steps: vec![
            Step::new("D_1", "cwd(D, D_1) = Rob(h, D)", Equal, TOL),
            Step::new(
                "scale",
                "cwd(D, D_α) ≤ α·cwd(D, D_1) (the map coupling)",
                AtMost,
                TOL,
            ),
            Step::new("Rob≤", "Rob(h, D_α) ≤ (1 − α)·Rob(h, D)", AtMost, TOL),
            Step::new("Rob≥", "Rob(h, D_α) ≥ (1 − α)·Rob(h, D)", AtMost, TOL),
            Step::new(
                "tight",
                "Rob(h, D) − Rob(h, D_α) = cwd(D, D_α) = α·Rob(h, D)",
                Equal,
                TOL,
            ),
        ],
    }
}

pub fn check(proof: &mut Proof, seed: u64, case: usize) {
    let t = instance(seed ^ 0x7, case);
    let alpha = rng_for(seed ^ 0x77, case).random::<f64>();
    let ctx = || format!("{}, α = {alpha:.4}", t.description);
    let h = &t.classifier;
    let moved = |a: f64| {
        t.real
            .with_points(
                h.toward_adversarial(t.real.points(), t.real.labels(), a, t.norm)
                    .unwrap(),
            )
            .unwrap()
    };
    let (d1, da) = (moved(1.0), moved(alpha));
    let cwd = |s| {
        empirical_conditional_wasserstein(&t.real, s, 1, t.norm)
            .unwrap()
            .cwd
    };
    let rob = robustness(h, &t.real, t.norm);
    let rob_alpha = robustness(h, &da, t.norm);
    proof.step("D_1").record(cwd(&d1), rob, ctx);
    proof.step("scale").record(cwd(&da), alpha * cwd(&d1), ctx);
    proof
        .step("Rob≤")
        .record(rob_alpha, (1.0 - alpha) * rob, ctx);
    proof
        .step("Rob≥")
        .record((1.0 - alpha) * rob, rob_alpha, ctx);
    proof.step("tight").record(rob - rob_alpha, cwd(&da), ctx);
    proof.step("tight").record(cwd(&da), alpha * rob, ctx);
}
