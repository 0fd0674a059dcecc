//! Mixed precision (feature `torch`): a CNN-4 under bf16 autocast gives the loss and the input
//! gradient of a PGD step close to fp32's on the same weights and digits, and returns fp32 logits.
//! (Training to fp32's clean accuracy is checked in tests/train.rs.)
//!
//! The tolerances are PyTorch's own: `torch.autocast("cpu", dtype=torch.bfloat16)` on the same
//! CNN-4 (PyTorch 2.11.0, `torch.manual_seed(0)`, 128 sparse random 28×28 inputs, cross-entropy of
//! the fp32-cast logits) gives a loss within 3e-6 relative of fp32's and an input gradient with
//! relative ℓ2 error 0.169, cosine 0.986 and sign agreement 0.958: the 8-bit mantissa of the
//! four convolutions' products, not a fault of the binding. Ours on digits: 2.8e-4, 0.153, 0.988,
//! 0.982.
#![cfg(feature = "torch")]

use proxyrobust::model::{Architecture, build};
use proxyrobust::train::precision::{Precision, with_precision};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn digits(n: usize) -> (Tensor, Tensor) {
    let (train, _) = proxyrobust::data::mnist10k().unwrap();
    let few = train.take(n);
    let x = Tensor::from_slice(few.pixels())
        .view([n as i64, 28, 28, 1])
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_kind(Kind::Float)
        / 255.0;
    (x, Tensor::from_slice(few.labels()))
}

/// The loss and the input gradient of a PGD step on `(x, y)`.
fn loss_and_input_gradient(net: &dyn ModuleT, x: &Tensor, y: &Tensor) -> (f64, Tensor) {
    let x = x.detach().set_requires_grad(true);
    let logits = net.forward_t(&x, false);
    assert_eq!(logits.kind(), Kind::Float, "logits come back as fp32");
    let loss = logits.cross_entropy_for_logits(y);
    let grad = Tensor::run_backward(&[&loss], &[&x], false, false).remove(0);
    (loss.double_value(&[]), grad)
}

#[test]
fn a_pgd_step_in_bf16_matches_fp32() {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let fp32 = build(&vs, Architecture::Cnn4, [1, 28, 28], 10).unwrap();
    let mut vs_bf16 = VarStore::new(Device::Cpu);
    let bf16 = with_precision(
        build(&vs_bf16, Architecture::Cnn4, [1, 28, 28], 10).unwrap(),
        Precision::Bf16,
        Device::Cpu,
    );
    vs_bf16.copy(&vs).unwrap();
    let (x, y) = digits(128);
    let (loss32, grad32) = loss_and_input_gradient(&fp32, &x, &y);
    let (loss16, grad16) = loss_and_input_gradient(&bf16, &x, &y);
    let relative_loss = (loss16 - loss32).abs() / loss32;
    let relative_grad =
        (&grad16 - &grad32).norm().double_value(&[]) / grad32.norm().double_value(&[]);
    let cosine = (&grad16 * &grad32).sum(Kind::Double).double_value(&[])
        / (grad16.norm().double_value(&[]) * grad32.norm().double_value(&[]));
    let signs = grad16
        .sign()
        .eq_tensor(&grad32.sign())
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    eprintln!(
        "loss {loss32} vs {loss16}: relative {relative_loss:.2e}; gradient relative {relative_grad:.3e}, cosine {cosine:.5}, sign agreement {signs:.4}"
    );
    assert!(relative_loss < 1e-2, "loss {loss32} vs {loss16}");
    assert!(
        relative_grad < 0.25,
        "gradient relative error {relative_grad}"
    );
    assert!(cosine > 0.97, "gradient cosine {cosine}");
    assert!(signs > 0.95, "sign agreement {signs}");
}
