//! CNN-2 and CNN-4 of the paper's Table 9, layer for layer as in
//! `shared/reference/pgd_train_reference.py` (3×3 convolutions with padding 1 and bias, ReLU,
//! 2×2 max pooling, one linear layer); parameters named by `nn.Sequential` index.

use tch::nn::{self, ConvConfig};

use super::Parts;

/// `(in_channels, out_channels)` of each convolution and whether a 2×2 max pool follows it.
type Block = (i64, i64, bool);

/// The sequential stack: conv–ReLU(–pool) for each block, flatten, linear. Indices count every
/// module as PyTorch's `nn.Sequential` does (conv, ReLU, pool, …, flatten, linear).
fn stack(root: &nn::Path, blocks: &[Block], [_, h, w]: [i64; 3], classes: i64) -> Parts {
    let conv = ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let mut seq = nn::seq_t();
    let mut index = 0;
    let mut last = 0;
    for &(cin, cout, pool) in blocks {
        seq = seq
            .add(nn::conv2d(root / index.to_string(), cin, cout, 3, conv))
            .add_fn(|x| x.shallow_clone().relu_()); // in place: the layer's backward reads its input, not its output
        index += 2;
        if pool {
            seq = seq.add_fn(|x| x.max_pool2d_default(2));
            index += 1;
        }
        last = cout;
    }
    index += 1; // flatten
    let features = last * (h / 4) * (w / 4);
    Parts {
        features: seq.add_fn(|x| x.flatten(1, -1)),
        head: nn::linear(
            root / index.to_string(),
            features,
            classes,
            Default::default(),
        ),
    }
}

/// CNN-2: conv(C,16)-ReLU-pool, conv(16,32)-ReLU-pool, flatten, linear.
pub fn cnn2(root: &nn::Path, input: [i64; 3], classes: i64) -> Parts {
    stack(
        root,
        &[(input[0], 16, true), (16, 32, true)],
        input,
        classes,
    )
}

/// CNN-4: conv(C,16)-ReLU, conv(16,16)-ReLU-pool, conv(16,32)-ReLU, conv(32,32)-ReLU-pool,
/// flatten, linear.
pub fn cnn4(root: &nn::Path, input: [i64; 3], classes: i64) -> Parts {
    stack(
        root,
        &[
            (input[0], 16, false),
            (16, 16, true),
            (16, 32, false),
            (32, 32, true),
        ],
        input,
        classes,
    )
}
