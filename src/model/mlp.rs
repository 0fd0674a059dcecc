//! A multi-layer perceptron: flatten, then linear–ReLU for each hidden width, then linear;
//! parameters named by `nn.Sequential` index (`1.weight`, `3.weight`, … after the flatten at 0).

use tch::nn;

use super::Parts;

/// `inputs` features, the given hidden widths, `classes` outputs.
pub fn mlp(root: &nn::Path, inputs: i64, hidden: &[i64], classes: i64) -> Parts {
    let mut seq = nn::seq_t().add_fn(|x| x.flatten(1, -1));
    let (mut index, mut width) = (1, inputs);
    for &h in hidden {
        seq = seq
            .add(nn::linear(
                root / index.to_string(),
                width,
                h,
                Default::default(),
            ))
            .add_fn(|x| x.shallow_clone().relu_()); // in place: the layer's backward reads its input, not its output
        index += 2;
        width = h;
    }
    Parts {
        features: seq,
        head: nn::linear(root / index.to_string(), width, classes, Default::default()),
    }
}
