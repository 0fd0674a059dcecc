//! The checkpointable SGD (train::Sgd) against libtorch's own torch::optim::SGD (tch's
//! nn::Sgd), an independent implementation: same model, same batches, five steps with momentum,
//! Nesterov and weight decay, and the parameters agree to float32 round-off.
#![cfg(feature = "torch")]

use std::collections::BTreeMap;

use proxyrobust::model::{Architecture, build};
use proxyrobust::train::{Sgd, SgdConfig};
use tch::nn::{self, ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

fn trained(use_ours: bool, nesterov: bool) -> Vec<Tensor> {
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let net = build(&vs, Architecture::Cnn2, [1, 8, 8], 3).unwrap();
    let parameters: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let config = SgdConfig {
        momentum: 0.9,
        nesterov,
        weight_decay: 5e-3,
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
            ours.step(&parameters, lr);
        } else {
            theirs.set_lr(lr);
            theirs.backward_step(&loss);
        }
    }
    parameters.values().map(|p| p.detach().copy()).collect()
}

#[test]
fn matches_libtorch_sgd() {
    for nesterov in [false, true] {
        let (ours, theirs) = (trained(true, nesterov), trained(false, nesterov));
        let moved = (&ours[0] - &trained(true, nesterov)[0])
            .abs()
            .max()
            .double_value(&[]);
        assert_eq!(moved, 0.0, "deterministic");
        for (a, b) in ours.iter().zip(&theirs) {
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "nesterov={nesterov}: max |Δθ| = {diff}");
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
