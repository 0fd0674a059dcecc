//! The checkpointable SGD (train::Sgd) against libtorch's own torch::optim::SGD (tch's
//! nn::Sgd), an independent implementation: same model, same batches, five steps with momentum,
//! Nesterov and weight decay — and with gradient-norm clipping, against tch's `clip_grad_norm`
//! before the step — and the parameters agree to float32 round-off.
#![cfg(feature = "torch")]

mod common;

use std::collections::BTreeMap;

use proxyrobust::model::{Architecture, build};
use proxyrobust::train::{Sgd, SgdConfig};
use tch::nn::{self, ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// The parameters after five steps; `max_grad_norm` 0 does not clip.
fn trained(use_ours: bool, nesterov: bool, max_grad_norm: f64) -> Vec<Tensor> {
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn2, [1, 8, 8], 3).unwrap();
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let config = SgdConfig {
        momentum: 0.9,
        nesterov,
        weight_decay: 5e-3,
        max_grad_norm,
    };
    let mut ours = Sgd::new(config.clone());
    let mut theirs = nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd: 5e-3,
        nesterov,
    }
    .build(&vs, 0.05)
    .unwrap();
    for step in 0..5 {
        tch::manual_seed(100 + step);
        let x = Tensor::rand([16, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
        let loss = net.forward_t(&x, true).cross_entropy_for_logits(&y);
        let lr = 0.05 * (1.0 + step as f64) / 5.0;
        if use_ours {
            loss.backward();
            // The norm it reports: every gradient flattened into one vector.
            let flat: Vec<Tensor> = parameters
                .values()
                .map(|p| p.grad().flatten(0, -1))
                .collect();
            let expected = Tensor::cat(&flat, 0).norm().double_value(&[]);
            let reported = ours.step(&parameters, lr).unwrap().double_value(&[]);
            assert!(
                (reported - expected).abs() <= 1e-5 * expected,
                "{reported} vs {expected}"
            );
        } else {
            theirs.set_lr(lr);
            if max_grad_norm > 0.0 {
                theirs.backward_step_clip_norm(&loss, max_grad_norm);
            } else {
                theirs.backward_step(&loss);
            }
        }
    }
    parameters.values().map(|p| p.detach().copy()).collect()
}

#[test]
fn matches_libtorch_sgd() {
    let _generator = common::torch_generator();
    // 0.05 is below the gradient norms of every step here, so each step is clipped.
    for (nesterov, clip) in [(false, 0.0), (true, 0.0), (true, 0.05)] {
        let (ours, theirs) = (
            trained(true, nesterov, clip),
            trained(false, nesterov, clip),
        );
        let moved = (&ours[0] - &trained(true, nesterov, clip)[0])
            .abs()
            .max()
            .double_value(&[]);
        assert_eq!(moved, 0.0, "deterministic");
        for (a, b) in ours.iter().zip(&theirs) {
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(
                diff < 1e-6,
                "nesterov={nesterov} clip={clip}: max |Δθ| = {diff}"
            );
        }
        let initial = {
            tch::manual_seed(5);
            let vs = VarStore::new(Device::Cpu);
            let _ = build(&vs, Architecture::Cnn2, [1, 8, 8], 3).unwrap();
            vs.variables()
                .into_iter()
                .collect::<BTreeMap<_, _>>()
                .into_values()
                .next()
                .unwrap()
        };
        assert!(
            (&ours[0] - &initial).abs().max().double_value(&[]) > 1e-4,
            "the parameters moved"
        );
    }
}

/// Clipping changes the trajectory (the threshold is below the gradient norms, so the clipped
/// run is not the plain one), and a threshold far above them leaves it as it was.
#[test]
fn clipping_acts_only_above_the_threshold() {
    let _generator = common::torch_generator();
    let max_diff = |a: &[Tensor], b: &[Tensor]| {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    };
    let plain = trained(true, true, 0.0);
    assert!(max_diff(&plain, &trained(true, true, 0.05)) > 1e-4);
    assert!(max_diff(&plain, &trained(true, true, 1e6)) < 1e-7);
}
