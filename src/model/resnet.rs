//! The CIFAR-style residual networks of RobustBench and the seed paper's code (He et al., 2016):
//! ResNet-18/50 and the pre-activation ResNet-18.
//!
//! ResNet: a 3×3 stem convolution with 64 channels (no bias) and batch norm, four stages (widths
//! 64/128/256/512 times the block's expansion, strides 1/2/2/2) of BasicBlocks (two 3×3
//! convolutions) or Bottlenecks (1×1, 3×3, 1×1 with expansion 4), 1×1 convolution + batch-norm
//! shortcuts where the shape changes, adaptive average pooling (so 64×64 inputs work too) and a
//! linear layer, as in `shared/reference/pgd_train_reference.py`. Parameter names are
//! PyTorch's: `conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`, `layer2.0.shortcut.0.weight`,
//! `linear.weight`, …; batch norms carry `num_batches_tracked` like PyTorch's state_dict.
//!
//! Pre-activation ResNet-18 (He et al., 2016b, in Rice et al.'s layout used by RobustBench):
//! blocks compute relu(bn1(x)) first, the shortcut is a bare 1×1 convolution (`shortcut.0`) of
//! that pre-activation, and a final batch norm `bn` precedes pooling.

use tch::Tensor;
use tch::nn::{self, ConvConfig, ModuleT};

use super::Parts;

/// The residual block of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3×3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1×1 reduce, 3×3, 1×1 expand (ResNet-50/101/152), expansion 4.
    Bottleneck,
}

impl Block {
    fn expansion(self) -> i64 {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

pub(super) fn conv(path: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    let padding = (k - 1) / 2;
    nn::conv2d(
        path,
        cin,
        cout,
        k,
        ConvConfig {
            stride,
            padding,
            bias: false,
            ..Default::default()
        },
    )
}

pub(super) fn batch_norm(path: nn::Path, channels: i64) -> nn::BatchNorm {
    // PyTorch's state_dict has this counter; keep it (not trainable) so the files match key for key.
    let _ = path.zeros_no_train("num_batches_tracked", &[]);
    nn::batch_norm2d(path, channels, Default::default())
}

/// A convolution followed by its batch norm, applied in train or eval mode.
struct ConvBn(nn::Conv2D, nn::BatchNorm);

impl ConvBn {
    fn new(path: &nn::Path, index: usize, cin: i64, cout: i64, k: i64, stride: i64) -> Self {
        ConvBn(
            conv(path / format!("conv{index}"), cin, cout, k, stride),
            batch_norm(path / format!("bn{index}"), cout),
        )
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.0).apply_t(&self.1, train)
    }
}

/// One residual block from `cin` channels to `planes · expansion` channels.
fn residual_block(
    path: nn::Path,
    block: Block,
    cin: i64,
    planes: i64,
    stride: i64,
) -> impl ModuleT + use<> {
    let cout = planes * block.expansion();
    let layers: Vec<ConvBn> = match block {
        Block::Basic => vec![
            ConvBn::new(&path, 1, cin, planes, 3, stride),
            ConvBn::new(&path, 2, planes, planes, 3, 1),
        ],
        Block::Bottleneck => vec![
            ConvBn::new(&path, 1, cin, planes, 1, 1),
            ConvBn::new(&path, 2, planes, planes, 3, stride),
            ConvBn::new(&path, 3, planes, cout, 1, 1),
        ],
    };
    let shortcut = (stride != 1 || cin != cout).then(|| {
        let s = &path / "shortcut";
        ConvBn(
            conv(&s / "0", cin, cout, 1, stride),
            batch_norm(&s / "1", cout),
        )
    });
    nn::func_t(move |x, train| {
        let last = layers.len() - 1;
        let mut out = x.shallow_clone();
        for (i, layer) in layers.iter().enumerate() {
            out = layer.forward(&out, train);
            if i < last {
                out = out.relu_();
            }
        }
        let skip = match &shortcut {
            Some(s) => s.forward(x, train),
            None => x.shallow_clone(),
        };
        // In place on the last batch norm's output, which its backward does not need.
        let _ = out.g_add_(&skip);
        out.relu_()
    })
}

/// A ResNet of `block`s with `blocks[i]` blocks in stage i, for `channels` input channels and
/// `classes` outputs.
pub fn resnet(
    root: &nn::Path,
    block: Block,
    blocks: [usize; 4],
    channels: i64,
    classes: i64,
) -> Parts {
    // ReLUs run in place on batch-norm outputs (like torchvision's `ReLU(inplace=True)`): batch
    // norm's backward reads its input, not its output, and ReLU's reads only its result.
    let mut seq = nn::seq_t()
        .add(conv(root / "conv1", channels, 64, 3, 1))
        .add(batch_norm(root / "bn1", 64))
        .add_fn(|x| x.shallow_clone().relu_());
    let mut cin = 64;
    for (stage, (planes, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
        .into_iter()
        .enumerate()
    {
        let layer = root / format!("layer{}", stage + 1);
        for i in 0..blocks[stage] {
            let s = if i == 0 { stride } else { 1 };
            seq = seq.add(residual_block(
                &layer / i.to_string(),
                block,
                cin,
                planes,
                s,
            ));
            cin = planes * block.expansion();
        }
    }
    Parts {
        features: seq.add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)),
        head: nn::linear(root / "linear", cin, classes, Default::default()),
    }
}

/// A pre-activation BasicBlock: out = conv2(relu(bn2(conv1(a)))) + shortcut, a = relu(bn1(x)),
/// where the shortcut is x or, when the shape changes, a 1×1 convolution of a.
fn preact_block(path: nn::Path, cin: i64, cout: i64, stride: i64) -> impl ModuleT + use<> {
    let bn1 = batch_norm(&path / "bn1", cin);
    let conv1 = conv(&path / "conv1", cin, cout, 3, stride);
    let bn2 = batch_norm(&path / "bn2", cout);
    let conv2 = conv(&path / "conv2", cout, cout, 3, 1);
    let shortcut =
        (stride != 1 || cin != cout).then(|| conv(&path / "shortcut" / "0", cin, cout, 1, stride));
    nn::func_t(move |x, train| {
        let a = x.apply_t(&bn1, train).relu_();
        let skip = match &shortcut {
            Some(c) => a.apply(c),
            None => x.shallow_clone(),
        };
        a.apply(&conv1).apply_t(&bn2, train).relu_().apply(&conv2) + skip
    })
}

/// Pre-activation ResNet-18 for `channels` input channels and `classes` outputs.
pub fn preact_resnet18(root: &nn::Path, channels: i64, classes: i64) -> Parts {
    let mut seq = nn::seq_t().add(conv(root / "conv1", channels, 64, 3, 1));
    let mut cin = 64;
    for (stage, (cout, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
        .into_iter()
        .enumerate()
    {
        let layer = root / format!("layer{}", stage + 1);
        seq = seq
            .add(preact_block(&layer / "0", cin, cout, stride))
            .add(preact_block(&layer / "1", cout, cout, 1));
        cin = cout;
    }
    Parts {
        features: seq.add(batch_norm(root / "bn", 512)).add_fn(|x| {
            x.shallow_clone()
                .relu_()
                .adaptive_avg_pool2d([1, 1])
                .flatten(1, -1)
        }),
        head: nn::linear(root / "linear", 512, classes, Default::default()),
    }
}
