//! Interop with PyTorch (feature `torch`): weights saved by the project load into the PyTorch
//! modules of tests/interop/pytorch_side.py and give the same logits (max abs difference ≤ 1e-5
//! on CPU), and PyTorch-initialised weights load here and give the same logits. The Python side
//! runs in the venv of scripts/ensure-libtorch.sh, found from $LIBTORCH. Training-mode gradients
//! (input and every parameter) agree with PyTorch's autograd as well, in float64 so that no
//! ReLU input sits close enough to zero to flip its sign between the two sides (in float32 a
//! single flip moves one entry by its whole gradient); this checks the in-place activations. Training-mode gradients
//! (input and every parameter) agree with PyTorch's autograd too, which checks the in-place
//! activations of the models.
//!
//! Both memory layouts are compared with PyTorch's default (contiguous) modules: the contiguous
//! one within 1e-5 absolute; the channels-last one the models use on CPU (model::layout) sums in
//! another order, so within 1e-5 relative to the largest logit (absolute when logits are below 1).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use proxyrobust::model::layout::Layout;
use proxyrobust::model::layout::save_weights;
use proxyrobust::model::{Architecture, build_in_layout};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// Each architecture with its name on the Python side and its input shape (C, H, W).
/// WideResNets at depth 16 and width 2 stand for the family (28-10 and 70-16 have the same
/// layout, only more blocks and channels).
const ARCHITECTURES: [(&str, [i64; 3]); 8] = [
    ("cnn2", [1, 28, 28]),
    ("cnn4", [1, 28, 28]),
    ("mlp", [1, 28, 28]),
    ("resnet18", [3, 32, 32]),
    ("resnet50", [3, 32, 32]),
    ("preact-resnet18", [3, 32, 32]),
    ("wrn-16-2", [3, 32, 32]),
    ("wrn-16-2-swish", [3, 32, 32]),
];

/// `$LIBTORCH` is `<venv>/lib/python3.X/site-packages/torch`; the interpreter is `<venv>/bin/python`.
fn python() -> PathBuf {
    let libtorch = std::env::var("LIBTORCH")
        .expect("LIBTORCH is set by scripts/test.sh (scripts/ensure-libtorch.sh)");
    let venv = Path::new(&libtorch)
        .ancestors()
        .nth(4)
        .expect("LIBTORCH inside a venv")
        .to_path_buf();
    venv.join("bin/python")
}

fn pytorch(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pytorch_side.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pytorch_side.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PyTorch initialises `name` (seed `seed`) and runs `mode` ("logits" or "gradients") on the
/// input at `x_path`: the weights file and the output file.
fn pytorch_fresh_weights(
    dir: &Path,
    name: &str,
    seed: u64,
    mode: &str,
    x_path: &Path,
) -> (PathBuf, PathBuf) {
    let weights = dir.join(format!("{name}-torch-{seed}.safetensors"));
    pytorch(&["init", name, &seed.to_string(), weights.to_str().unwrap()]);
    let out = dir.join(format!("{name}-torch-{seed}-{mode}.safetensors"));
    pytorch(&[
        mode,
        name,
        weights.to_str().unwrap(),
        x_path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    (weights, out)
}

fn read(path: &Path, key: &str) -> Tensor {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, t)| t)
        .unwrap()
}

fn max_abs_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn input(dir: &Path, [c, h, w]: [i64; 3]) -> (Tensor, PathBuf) {
    tch::manual_seed(7);
    let x = Tensor::rand([8, c, h, w], (Kind::Float, Device::Cpu));
    let path = dir.join(format!("input-{c}x{h}x{w}.safetensors"));
    Tensor::write_safetensors(&[("input", &x)], &path).unwrap();
    (x, path)
}

/// The agreement asked of `layout` for logits `ours` (see the module comment).
fn tolerance(layout: Layout, ours: &Tensor) -> f64 {
    match layout {
        Layout::Contiguous => 1e-5,
        Layout::ChannelsLast => 1e-5 * ours.abs().max().double_value(&[]).max(1.0),
    }
}

const LAYOUTS: [Layout; 2] = [Layout::Contiguous, Layout::ChannelsLast];

/// Fresh batch norms are the identity in eval mode; random running statistics and affine
/// parameters make the comparison see where each batch norm sits.
fn randomise_batch_norm_statistics(vs: &VarStore) {
    tch::no_grad(|| {
        for (key, mut t) in vs.variables() {
            let fill = if key.ends_with("running_var") {
                Some((0.5, 1.5))
            } else if key.ends_with("running_mean") || (key.contains("bn") && key.ends_with("bias"))
            {
                Some((-0.2, 0.2))
            } else if key.contains("bn") && key.ends_with("weight") {
                Some((0.5, 1.5))
            } else {
                None
            };
            if let Some((lo, hi)) = fill {
                let _ = t.uniform_(lo, hi);
            }
        }
    });
}

#[test]
fn weights_saved_here_give_the_same_logits_in_pytorch() {
    let _generator = common::torch_generator();
    let dir = tempfile::tempdir().unwrap();
    for (name, shape) in ARCHITECTURES {
        let arch: Architecture = name.parse().unwrap();
        let (x, x_path) = input(dir.path(), shape);
        for layout in LAYOUTS {
            tch::manual_seed(1);
            let vs = VarStore::new(Device::Cpu);
            let net = build_in_layout(&vs, arch, shape, 10, layout).unwrap();
            randomise_batch_norm_statistics(&vs);
            let weights = dir.path().join(format!("{name}-{layout:?}.safetensors"));
            save_weights(&vs, &weights).unwrap();
            let ours = net.forward_t(&x, false);
            let out = dir
                .path()
                .join(format!("{name}-{layout:?}-logits.safetensors"));
            pytorch(&[
                "logits",
                name,
                weights.to_str().unwrap(),
                x_path.to_str().unwrap(),
                out.to_str().unwrap(),
            ]);
            let theirs = read(&out, "logits");
            assert_eq!(theirs.size(), [8, 10]);
            let diff = max_abs_difference(&ours, &theirs);
            assert!(
                diff <= tolerance(layout, &ours),
                "{name} ({layout:?}): max |Δlogit| = {diff}"
            );
            assert!(
                ours.abs().max().double_value(&[]) > 1e-3,
                "{name}: logits should not be trivially zero"
            );
        }
    }
}

#[test]
fn pytorch_weights_load_here_and_give_the_same_logits() {
    let _generator = common::torch_generator();
    let dir = tempfile::tempdir().unwrap();
    for (name, shape) in ARCHITECTURES {
        let arch: Architecture = name.parse().unwrap();
        let (x, x_path) = input(dir.path(), shape);
        let (weights, out) = pytorch_fresh_weights(dir.path(), name, 3, "logits", &x_path);
        let theirs = read(&out, "logits");
        for layout in LAYOUTS {
            let mut vs = VarStore::new(Device::Cpu);
            let net = build_in_layout(&vs, arch, shape, 10, layout).unwrap();
            vs.load(&weights).unwrap();
            let ours = net.forward_t(&x, false);
            let diff = max_abs_difference(&ours, &theirs);
            assert!(
                diff <= tolerance(layout, &ours),
                "{name} ({layout:?}): max |Δlogit| = {diff}"
            );
        }
    }
}

/// Float64, train mode, mean cross-entropy against labels `i mod 10`: our input and parameter
/// gradients against PyTorch's, each tensor within 1e-9 of its largest entry, in both layouts.
#[test]
fn training_gradients_match_pytorch_in_float64() {
    let _generator = common::torch_generator();
    let dir = tempfile::tempdir().unwrap();
    for (name, shape) in ARCHITECTURES {
        let arch: Architecture = name.parse().unwrap();
        let (x, x_path) = input(dir.path(), shape);
        let (weights, out) = pytorch_fresh_weights(dir.path(), name, 5, "gradients", &x_path);
        let theirs: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&out)
            .unwrap()
            .into_iter()
            .collect();
        for layout in LAYOUTS {
            let mut vs = VarStore::new(Device::Cpu);
            let net = build_in_layout(&vs, arch, shape, 10, layout).unwrap();
            vs.load(&weights).unwrap();
            vs.double();
            for conv in vs.variables().into_values().filter(|t| t.dim() == 4) {
                let size = conv.size();
                assert_eq!(
                    conv.stride(),
                    layout.strides([size[0], size[1], size[2], size[3]]),
                    "{name}: weights keep the {layout:?} layout in float64"
                );
            }
            let input = x.to_kind(Kind::Double).set_requires_grad(true);
            let labels = Tensor::arange(8, (Kind::Int64, Device::Cpu)).remainder(10);
            // Not `cross_entropy_for_logits`, whose log-softmax runs in float32.
            net.forward_t(&input, true)
                .log_softmax(-1, Kind::Double)
                .nll_loss(&labels)
                .backward();
            let mut ours = vec![("input".to_string(), input.grad())];
            ours.extend(
                vs.variables()
                    .into_iter()
                    .filter(|(_, p)| p.requires_grad())
                    .map(|(k, p)| (format!("grad/{k}"), p.grad())),
            );
            let mut keys: Vec<&String> = ours.iter().map(|(k, _)| k).collect();
            let mut expected: Vec<&String> = theirs.keys().collect();
            keys.sort();
            expected.sort();
            assert_eq!(keys, expected, "{name}: the tensors with gradients");
            for (key, g) in &ours {
                let reference = &theirs[key];
                assert_eq!(reference.kind(), Kind::Double);
                let scale = reference.abs().max().double_value(&[]);
                let diff = max_abs_difference(g, reference);
                assert!(
                    scale > 0.0 && diff <= 1e-9 * scale,
                    "{name} ({layout:?}) {key}: max |Δ| = {diff:e}, largest |∂| = {scale:e}"
                );
            }
        }
    }
}
