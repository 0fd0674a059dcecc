//! Attacks and robust evaluation (feature `torch`): every attack stays in the ε-ball and the
//! [0, 1] box, a constant model is never fooled, APGD's checkpoints are the published ones, FAB's
//! boundary projection is the closed form when the box is inactive, the minimal distance on a
//! linear model matches theory::linear's exact distance within 1%, and the AutoAttack chain's
//! robust accuracy never increases.
#![cfg(feature = "torch")]

mod common;

use faer::Mat;
use proxyrobust::attack::apgd::checkpoints;
use proxyrobust::attack::fab::project_onto_hyperplane;
use proxyrobust::attack::threat::norms;
use proxyrobust::attack::{
    Apgd, ApgdLoss, Attack, Fab, FabTarget, MinimalDistance, Pgd, Square, Threat, Version, chain,
};
use proxyrobust::eval::{EvalSettings, evaluate};
use proxyrobust::model::{Architecture, build};
use proxyrobust::theory::linear::LinearClassifier;
use proxyrobust::theory::norm::Norm;
use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn digits(n: i64) -> (Tensor, Tensor) {
    let (_, test) = proxyrobust::data::mnist10k().unwrap();
    let few = test.take(n as usize);
    let x = Tensor::from_slice(few.pixels())
        .view([n, 28, 28, 1])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    (x, Tensor::from_slice(few.labels()))
}

fn all_attacks(threat: Threat) -> Vec<Attack> {
    vec![
        Attack::Pgd(Pgd::fgsm(threat)),
        Attack::Pgd(Pgd {
            norm: threat.norm,
            epsilon: threat.epsilon,
            step_size: threat.epsilon / 4.0,
            steps: 5,
            random_start: true,
            restarts: 2,
        }),
        Attack::Apgd(Apgd {
            threat,
            loss: ApgdLoss::CrossEntropy,
            iterations: 10,
            restarts: 1,
        }),
        Attack::Apgd(Apgd {
            threat,
            loss: ApgdLoss::TargetedDlr { targets: 3 },
            iterations: 10,
            restarts: 1,
        }),
        Attack::Fab(Fab {
            threat,
            target: FabTarget::Targeted { targets: 3 },
            iterations: 10,
            restarts: 2,
        }),
        Attack::Square(Square {
            threat,
            queries: 50,
            p_init: 0.8,
            restarts: 1,
        }),
    ]
}

#[test]
fn every_attack_stays_in_the_ball_and_the_box() {
    let _generator = common::torch_generator();
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn2, [1, 28, 28], 10).unwrap();
    let (x, y) = digits(16);
    for threat in [
        Threat {
            norm: Norm::Linf,
            epsilon: 0.3,
        },
        Threat {
            norm: Norm::L2,
            epsilon: 2.0,
        },
    ] {
        for attack in all_attacks(threat) {
            let (adv, broken) = attack.perturb(&net, &x, &y);
            let name = format!("{} {:?}", attack.name(), threat.norm);
            assert!(
                adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0,
                "{name}: left the box"
            );
            let size = norms(&(&adv - &x), threat.norm).max().double_value(&[]);
            assert!(
                size <= threat.epsilon * (1.0 + 1e-5),
                "{name}: left the ε-ball ({size})"
            );
            // What an attack calls broken is misclassified at the point it returns.
            let wrong = net.forward_t(&adv, false).argmax(-1, false).ne_tensor(&y);
            assert_eq!(
                broken
                    .logical_and(&wrong.logical_not())
                    .sum(Kind::Int64)
                    .int64_value(&[]),
                0,
                "{name}"
            );
        }
    }
}

/// Logits `(0, 1, 0)` whatever the input (the input enters with weight 0, so gradients exist).
fn constant_logits(x: &Tensor) -> Tensor {
    x.reshape([x.size()[0], -1])
        .sum_dim_intlist(&[1i64][..], true, Kind::Float)
        * 0.0
        + Tensor::from_slice(&[0.0f32, 1.0, 0.0])
}

#[test]
fn a_constant_model_is_never_fooled() {
    let _generator = common::torch_generator();
    let x = Tensor::rand([8, 1, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::full([8], 1, (Kind::Int64, Device::Cpu));
    let model = nn::func_t(|x, _| constant_logits(x));
    for threat in [
        Threat {
            norm: Norm::Linf,
            epsilon: 0.5,
        },
        Threat {
            norm: Norm::L2,
            epsilon: 3.0,
        },
    ] {
        for attack in all_attacks(threat) {
            let (adv, broken) = attack.perturb(&model, &x, &y);
            assert_eq!(
                broken.sum(Kind::Int64).int64_value(&[]),
                0,
                "{}",
                attack.name()
            );
            assert_eq!(
                constant_logits(&adv)
                    .argmax(-1, false)
                    .eq(1)
                    .all()
                    .int64_value(&[]),
                1
            );
        }
    }
}

#[test]
fn apgd_checkpoints_are_the_published_ones() {
    // p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 for 100 iterations.
    assert_eq!(checkpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
    assert_eq!(checkpoints(10), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
}

#[test]
fn fab_projection_matches_hand_worked_solutions_with_and_without_the_box() {
    let x = Tensor::full([2, 3], 0.5, (Kind::Float, Device::Cpu));
    let w = Tensor::from_slice(&[1.0f32, -2.0, 2.0, 0.5, 0.5, 0.0]).view([2, 3]);
    let c = Tensor::from_slice(&[0.09f32, -0.04]);
    // ℓ2: δ = c w / ‖w‖²; ℓ∞: δ = c sign(w) / ‖w‖₁.
    let l2 = project_onto_hyperplane(Norm::L2, &x, &w, &c);
    let expected_l2 = Tensor::from_slice(&[0.01f32, -0.02, 0.02, -0.04, -0.04, 0.0]).view([2, 3]);
    assert!(
        (&l2 - &expected_l2).abs().max().double_value(&[]) < 1e-6,
        "{l2}"
    );
    let linf = project_onto_hyperplane(Norm::Linf, &x, &w, &c);
    let expected_linf =
        Tensor::from_slice(&[0.018f32, -0.018, 0.018, -0.04, -0.04, 0.0]).view([2, 3]);
    assert!(
        (&linf - &expected_linf).abs().max().double_value(&[]) < 1e-6,
        "{linf}"
    );
    // With the box active the constraint still holds and the box is respected.
    let edge = Tensor::from_slice(&[0.99f32, 0.5, 0.5]).view([1, 3]);
    let w1 = Tensor::from_slice(&[1.0f32, 0.1, 0.1]).view([1, 3]);
    let c1 = Tensor::from_slice(&[0.05f32]);
    // Worked by hand: the first coordinate stops at the box after 0.01, then the reach grows as
    // 0.01 + 0.2·s (ℓ∞) or 0.01 + 0.02·s (ℓ2) and meets c at δ = (0.01, 0.2, 0.2) in both norms.
    // Where the box makes c unreachable (w = (1, 0, 0)), δ goes as far as the box allows.
    let expected_edge = Tensor::from_slice(&[0.01f32, 0.2, 0.2]).view([1, 3]);
    let w2 = Tensor::from_slice(&[1.0f32, 0.0, 0.0]).view([1, 3]);
    let expected_unreachable = Tensor::from_slice(&[0.01f32, 0.0, 0.0]).view([1, 3]);
    for norm in [Norm::L2, Norm::Linf] {
        let d = project_onto_hyperplane(norm, &edge, &w1, &c1);
        assert!(
            ((&w1 * &d).sum(Kind::Float).double_value(&[]) - 0.05).abs() < 1e-5,
            "{norm:?} {d}"
        );
        assert!((&edge + &d).max().double_value(&[]) <= 1.0 + 1e-6);
        assert!(
            (&d - &expected_edge).abs().max().double_value(&[]) < 1e-6,
            "{norm:?} {d}"
        );
        let far = project_onto_hyperplane(norm, &edge, &w2, &c1);
        assert!(
            (&far - &expected_unreachable).abs().max().double_value(&[]) < 1e-6,
            "{norm:?} {far}"
        );
    }
}

/// A 3-class linear model on 16 inputs near the middle of the box, so the nearest adversarial
/// point lies inside [0, 1] and theory::linear's exact distance is the true one.
#[test]
fn minimal_distance_on_a_linear_model_matches_the_exact_distance_within_one_percent() {
    let _generator = common::torch_generator();
    let (k, d, n) = (3usize, 16usize, 64i64);
    tch::manual_seed(5);
    let w = Tensor::randn([k as i64, d as i64], (Kind::Float, Device::Cpu)) * 3.0;
    // Boundaries pass near the centre of the box, so distances vary and stay small.
    let b = -w.sum_dim_intlist(&[1i64][..], false, Kind::Float) * 0.5
        + Tensor::randn([k as i64], (Kind::Float, Device::Cpu)) * 0.1;
    let x = Tensor::rand([n, d as i64], (Kind::Float, Device::Cpu)) * 0.1 + 0.45;
    let ws: Vec<f64> = Vec::try_from(w.reshape([-1]).to_kind(Kind::Double)).unwrap();
    let bs: Vec<f64> = Vec::try_from(b.to_kind(Kind::Double)).unwrap();
    let xs: Vec<f64> = Vec::try_from(x.reshape([-1]).to_kind(Kind::Double)).unwrap();
    let exact = LinearClassifier::new(Mat::from_fn(k, d, |r, c| ws[r * d + c]), bs).unwrap();
    let points = Mat::from_fn(n as usize, d, |i, j| xs[i * d + j]);
    let labels = exact.predict(points.as_ref());
    let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let (wt, bt) = (w.tr(), b.shallow_clone());
    let model = nn::func_t(move |x: &Tensor, _| x.matmul(&wt) + &bt);
    for norm in [Norm::L2, Norm::Linf] {
        let truth = exact.distances_to_boundary(points.as_ref(), &labels, norm);
        let max_radius = if norm == Norm::L2 { 0.5 } else { 0.1 };
        let search = MinimalDistance {
            threat: Threat {
                norm,
                epsilon: max_radius,
            },
            max_radius,
            fab_iterations: 20,
            bisection_steps: 14,
            pgd_steps: 30,
        };
        let found = search.measure(&model, &x, &y);
        let (fab, upper): (Vec<f64>, Vec<f64>) = (
            Vec::try_from(found.fab.to_kind(Kind::Double)).unwrap(),
            Vec::try_from(found.upper_bound.to_kind(Kind::Double)).unwrap(),
        );
        let mut checked = 0;
        for i in 0..n as usize {
            if truth[i] > 0.8 * max_radius {
                continue;
            }
            checked += 1;
            assert!(
                upper[i] >= truth[i] * (1.0 - 1e-3),
                "{norm:?} point {i}: {} below the exact {}",
                upper[i],
                truth[i]
            );
            assert!(
                upper[i] <= truth[i] * 1.01 + 1e-6,
                "{norm:?} point {i}: {} vs exact {}",
                upper[i],
                truth[i]
            );
            assert!(
                fab[i] <= truth[i] * 1.01 + 1e-6,
                "{norm:?} FAB alone, point {i}: {} vs exact {}",
                fab[i],
                truth[i]
            );
        }
        assert!(
            checked > 40,
            "{norm:?}: only {checked} points checked; exact distances {truth:?}"
        );
    }
}

#[test]
fn autoattack_chain_never_raises_robust_accuracy_and_is_deterministic() {
    let _generator = common::torch_generator();
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn2, [1, 28, 28], 10).unwrap();
    let (x, y) = digits(24);
    let threat = Threat {
        norm: Norm::Linf,
        epsilon: 0.02,
    };
    assert_eq!(
        chain(Version::Standard, threat)
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>(),
        ["apgd-ce", "apgd-t", "fab-t", "square"]
    );
    assert_eq!(chain(Version::Fast, threat).len(), 2);
    let settings = EvalSettings {
        pgd: None,
        autoattack: Some((Version::Standard, threat)),
        distance: Some(MinimalDistance {
            threat,
            max_radius: 0.5,
            fab_iterations: 10,
            bisection_steps: 6,
            pgd_steps: 5,
        }),
        each_attack: true,
        limit: 0,
        batch_size: 10,
        seed: 3,
    };
    let (summary, samples) = evaluate(&net, &x, &y, 10, &settings, false).unwrap();
    let accuracies: Vec<f64> = summary
        .autoattack_chain
        .iter()
        .map(|s| s.robust_accuracy)
        .collect();
    assert_eq!(accuracies.len(), 5);
    assert_eq!(accuracies[0], summary.clean_accuracy);
    assert!(
        accuracies.windows(2).all(|w| w[1] <= w[0]),
        "{accuracies:?}"
    );
    assert_eq!(samples.len(), 24);
    // A point robust at ε has no adversarial example closer than ε from any method.
    for s in &samples {
        if s.autoattack_robust == Some(true) {
            assert!(
                s.distance.is_none_or(|d| d > threat.epsilon * 0.999),
                "{s:?}"
            );
        }
    }
    let (again, _) = evaluate(&net, &x, &y, 10, &settings, false).unwrap();
    assert_eq!(
        again
            .autoattack_chain
            .iter()
            .map(|s| s.robust_accuracy)
            .collect::<Vec<_>>(),
        accuracies
    );
    assert_eq!(again.distance.unwrap().mean, summary.distance.unwrap().mean);
}
