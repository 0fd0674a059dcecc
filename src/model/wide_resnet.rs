//! WideResNet-D-W (Zagoruyko & Komodakis, 2016) in the layout of RobustBench's `WideResNet`
//! (the seed repo's WRN-28-10/34-10): a 3×3 stem `conv1` with 16 channels, three groups
//! `block1`…`block3` of n = (D − 4)/6 pre-activation blocks (widths 16W, 32W, 64W, strides
//! 1/2/2), a final batch norm `bn1`, activation, adaptive average pooling and the linear layer
//! `fc`. Block i of group g is `blockg.layer.i` with `bn1`, `conv1`, `bn2`, `conv2` and, where the
//! width changes, a 1×1 `convShortcut` applied to the pre-activation. No dropout (the paper uses
//! none). The activation is ReLU or Swish (SiLU) — Swish is what Gowal et al.'s WRN-70-16 uses;
//! here it keeps this layout rather than theirs.

use tch::Tensor;
use tch::nn::{self, ModuleT};

use super::resnet::{batch_norm, conv};
use super::{Activation, Parts};

/// The activation of a batch norm's output `x`, which nothing else reads: ReLU overwrites it in
/// place (its backward needs only the result); Swish's backward needs its input, so it allocates.
fn activate(mut x: Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::Relu => x.relu_(),
        Activation::Swish => x.silu(),
    }
}

/// One wide block: a = act(bn1(x)); out = conv2(act(bn2(conv1(a)))) + (x, or convShortcut(a)).
fn wide_block(
    path: nn::Path,
    cin: i64,
    cout: i64,
    stride: i64,
    activation: Activation,
) -> impl ModuleT + use<> {
    let bn1 = batch_norm(&path / "bn1", cin);
    let conv1 = conv(&path / "conv1", cin, cout, 3, stride);
    let bn2 = batch_norm(&path / "bn2", cout);
    let conv2 = conv(&path / "conv2", cout, cout, 3, 1);
    let shortcut = (cin != cout).then(|| conv(&path / "convShortcut", cin, cout, 1, stride));
    nn::func_t(move |x, train| {
        let a = activate(x.apply_t(&bn1, train), activation);
        let skip = match &shortcut {
            Some(c) => a.apply(c),
            None => x.shallow_clone(),
        };
        activate(a.apply(&conv1).apply_t(&bn2, train), activation).apply(&conv2) + skip
    })
}

/// WRN-`depth`-`width` for `channels` input channels and `classes` outputs; `depth` − 4 must be
/// divisible by 6 (checked where the architecture is parsed).
pub fn wide_resnet(
    root: &nn::Path,
    depth: i64,
    width: i64,
    activation: Activation,
    channels: i64,
    classes: i64,
) -> Parts {
    let n = (depth - 4) / 6;
    let mut seq = nn::seq_t().add(conv(root / "conv1", channels, 16, 3, 1));
    let mut cin = 16;
    for (group, (cout, stride)) in [(16 * width, 1), (32 * width, 2), (64 * width, 2)]
        .into_iter()
        .enumerate()
    {
        let layer = root / format!("block{}", group + 1) / "layer";
        for i in 0..n {
            seq = seq.add(wide_block(
                &layer / i.to_string(),
                cin,
                cout,
                if i == 0 { stride } else { 1 },
                activation,
            ));
            cin = cout;
        }
    }
    Parts {
        features: seq.add(batch_norm(root / "bn1", cin)).add_fn(move |x| {
            activate(x.shallow_clone(), activation)
                .adaptive_avg_pool2d([1, 1])
                .flatten(1, -1)
        }),
        head: nn::linear(root / "fc", cin, classes, Default::default()),
    }
}
