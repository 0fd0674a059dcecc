//! The CIFAR-style ResNet-18 of RobustBench and the seed paper's code (He et al., 2016), as in
//! `shared/reference/pgd_train_reference.py`: a 3×3 stem convolution with 64 channels (no bias)
//! and batch norm, four stages of two BasicBlocks (widths 64/128/256/512, strides 1/2/2/2) with
//! 1×1 convolution + batch-norm shortcuts where the shape changes, adaptive average pooling (so
//! 64×64 inputs work too) and a linear layer. Parameter names are PyTorch's: `conv1.weight`,
//! `bn1.*`, `layer1.0.conv1.weight`, `layer2.0.shortcut.0.weight`, `linear.weight`, …; batch
//! norms carry `num_batches_tracked` like PyTorch's state_dict.

use tch::nn::{self, ConvConfig, ModuleT};
use tch::{Kind, Tensor};

fn conv(path: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    let padding = if k == 3 { 1 } else { 0 };
    nn::conv2d(path, cin, cout, k, ConvConfig { stride, padding, bias: false, ..Default::default() })
}

fn batch_norm(path: nn::Path, channels: i64) -> nn::BatchNorm {
    // PyTorch's state_dict has this counter; keep it so the files match key for key.
    let _ = path.var_copy("num_batches_tracked", &Tensor::zeros([], (Kind::Float, path.device())));
    nn::batch_norm2d(path, channels, Default::default())
}

fn basic_block(path: nn::Path, cin: i64, cout: i64, stride: i64) -> impl ModuleT + use<> {
    let conv1 = conv(&path / "conv1", cin, cout, 3, stride);
    let bn1 = batch_norm(&path / "bn1", cout);
    let conv2 = conv(&path / "conv2", cout, cout, 3, 1);
    let bn2 = batch_norm(&path / "bn2", cout);
    let shortcut = (stride != 1 || cin != cout).then(|| {
        let s = &path / "shortcut";
        (conv(&s / "0", cin, cout, 1, stride), batch_norm(&s / "1", cout))
    });
    nn::func_t(move |x, train| {
        let out = x.apply(&conv1).apply_t(&bn1, train).relu().apply(&conv2).apply_t(&bn2, train);
        let skip = match &shortcut {
            Some((c, b)) => x.apply(c).apply_t(b, train),
            None => x.shallow_clone(),
        };
        (out + skip).relu()
    })
}

/// ResNet-18 for `input` channels and `classes` outputs.
pub fn resnet18(root: &nn::Path, channels: i64, classes: i64) -> nn::SequentialT {
    let mut seq = nn::seq_t().add(conv(root / "conv1", channels, 64, 3, 1)).add(batch_norm(root / "bn1", 64)).add_fn(|x| x.relu());
    let mut cin = 64;
    for (stage, (cout, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].into_iter().enumerate() {
        let layer = root / format!("layer{}", stage + 1);
        seq = seq.add(basic_block(&layer / "0", cin, cout, stride)).add(basic_block(&layer / "1", cout, cout, 1));
        cin = cout;
    }
    seq.add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)).add(nn::linear(root / "linear", 512, classes, Default::default()))
}
