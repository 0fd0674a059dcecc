//! A compact class-conditional U-Net for ε-prediction (Ho et al. 2020, Appendix B, at laptop
//! scale): a 3×3 input convolution to `width` channels, two resolutions below the input (each
//! halved by a stride-2 convolution: 28 → 14 → 7, 32 → 16 → 8), one residual block per level on
//! the way down, one in the middle and one per level on the way up on the concatenated skip,
//! nearest-neighbour upsampling, and a 3×3 output convolution back to the image's channels.
//!
//! Residual blocks: GroupNorm → SiLU → 3×3 conv, plus a projection of the embedding, then
//! GroupNorm → SiLU → 3×3 conv, added to the input (through a 1×1 conv when the channels change).
//! The embedding is the sinusoidal embedding of t (Vaswani et al.), passed through a two-layer
//! MLP, plus a learned embedding of the class; class index `classes` is the null class that
//! classifier-free guidance (Ho & Salimans 2021) trains with and samples against.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Residual block conditioned on the embedding.
#[derive(Debug)]
struct ResBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    embedding: nn::Linear,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    skip: Option<nn::Conv2D>,
}

fn groups(channels: i64) -> i64 {
    [8, 4, 2, 1]
        .into_iter()
        .find(|g| channels % g == 0)
        .unwrap_or(1)
}

fn conv3(p: nn::Path, input: i64, output: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        padding: 1,
        stride,
        ..Default::default()
    };
    nn::conv2d(p, input, output, 3, config)
}

impl ResBlock {
    fn new(p: nn::Path, input: i64, output: i64, embedding: i64) -> Self {
        ResBlock {
            norm1: nn::group_norm(&p / "norm1", groups(input), input, Default::default()),
            conv1: conv3(&p / "conv1", input, output, 1),
            embedding: nn::linear(&p / "embedding", embedding, output, Default::default()),
            norm2: nn::group_norm(&p / "norm2", groups(output), output, Default::default()),
            conv2: conv3(&p / "conv2", output, output, 1),
            skip: (input != output)
                .then(|| nn::conv2d(&p / "skip", input, output, 1, Default::default())),
        }
    }

    fn forward(&self, x: &Tensor, embedding: &Tensor) -> Tensor {
        let h = self.conv1.forward(&self.norm1.forward(x).silu());
        let h = h + self
            .embedding
            .forward(embedding)
            .unsqueeze(-1)
            .unsqueeze(-1);
        let h = self.conv2.forward(&self.norm2.forward(&h).silu());
        match &self.skip {
            Some(skip) => skip.forward(x) + h,
            None => x + h,
        }
    }
}

/// The noise predictor ε_θ(x_t, t, y).
#[derive(Debug)]
pub struct UNet {
    width: i64,
    classes: i64,
    time1: nn::Linear,
    time2: nn::Linear,
    class_embedding: nn::Embedding,
    input: nn::Conv2D,
    down: Vec<(ResBlock, nn::Conv2D)>,
    middle: ResBlock,
    up: Vec<ResBlock>,
    top: ResBlock,
    norm_out: nn::GroupNorm,
    output: nn::Conv2D,
}

impl UNet {
    /// A U-Net for images of `channels` channels with `classes` classes and base `width`
    /// (channels `width`, `2·width`, `2·width` at the three resolutions).
    pub fn new(p: &nn::Path, channels: i64, classes: i64, width: i64) -> Self {
        let embedding = 4 * width;
        let widths = [width, 2 * width, 2 * width];
        let down = (0..2)
            .map(|level| {
                let q = p / format!("down{level}");
                (
                    ResBlock::new(&q / "block", widths[level], widths[level], embedding),
                    conv3(&q / "downsample", widths[level], widths[level + 1], 2),
                )
            })
            .collect();
        let up = (0..2)
            .map(|level| {
                let q = p / format!("up{level}");
                // Level 0 is the lowest: its input is the middle's output joined by its skip.
                let (skip, output) = (widths[1 - level], widths[1 - level]);
                ResBlock::new(&q / "block", widths[2 - level] + skip, output, embedding)
            })
            .collect();
        UNet {
            width,
            classes,
            time1: nn::linear(p / "time1", width, embedding, Default::default()),
            time2: nn::linear(p / "time2", embedding, embedding, Default::default()),
            class_embedding: nn::embedding(
                p / "class_embedding",
                classes + 1,
                embedding,
                Default::default(),
            ),
            input: conv3(p / "input", channels, width, 1),
            down,
            middle: ResBlock::new(p / "middle", widths[2], widths[2], embedding),
            up,
            top: ResBlock::new(p / "top", 2 * width, width, embedding),
            norm_out: nn::group_norm(p / "norm_out", groups(width), width, Default::default()),
            output: conv3(p / "output", width, channels, 1),
        }
    }

    /// The null class of classifier-free guidance.
    pub fn null_class(&self) -> i64 {
        self.classes
    }

    /// ε̂ for noisy images `x` (N, C, H, W) at steps `t` (N, int64) with labels `y` (N, int64;
    /// [`Self::null_class`] for the unconditional model).
    pub fn forward(&self, x: &Tensor, t: &Tensor, y: &Tensor) -> Tensor {
        let embedding = self
            .time2
            .forward(&self.time1.forward(&sinusoidal(t, self.width)).silu())
            + self.class_embedding.forward(y);
        let embedding = embedding.silu();
        let mut h = self.input.forward(x);
        let mut skips = vec![h.shallow_clone()];
        for (block, downsample) in &self.down {
            h = block.forward(&h, &embedding);
            skips.push(h.shallow_clone());
            h = downsample.forward(&h);
        }
        h = self.middle.forward(&h, &embedding);
        for block in &self.up {
            let skip = skips.pop().expect("one skip per level");
            let size = skip.size();
            h = h.upsample_nearest2d([size[2], size[3]], None, None);
            h = block.forward(&Tensor::cat(&[&h, &skip], 1), &embedding);
        }
        let skip = skips.pop().expect("the input's skip");
        h = self.top.forward(&Tensor::cat(&[&h, &skip], 1), &embedding);
        self.output.forward(&self.norm_out.forward(&h).silu())
    }
}

/// The sinusoidal embedding of steps `t` in `dim` dimensions: sin and cos of t·10000^(−k/(dim/2)).
fn sinusoidal(t: &Tensor, dim: i64) -> Tensor {
    let half = dim / 2;
    let frequencies =
        (Tensor::arange(half, (Kind::Float, t.device())) * (-(10000f64.ln()) / half as f64)).exp();
    let angles = t.to_kind(Kind::Float).unsqueeze(1) * frequencies.unsqueeze(0);
    Tensor::cat(&[angles.sin(), angles.cos()], 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output has the input's shape at MNIST and CIFAR sizes, and the class changes it.
    #[test]
    fn shapes_at_both_sizes_and_the_class_matters() {
        for (channels, size) in [(1, 28), (3, 32)] {
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let net = UNet::new(&vs.root(), channels, 10, 8);
            let x = Tensor::randn([2, channels, size, size], (Kind::Float, tch::Device::Cpu));
            let t = Tensor::from_slice(&[3i64, 900]);
            let a = net.forward(&x, &t, &Tensor::from_slice(&[1i64, 2]));
            assert_eq!(a.size(), [2, channels, size, size]);
            let b = net.forward(&x, &t, &Tensor::from_slice(&[10i64, 10]));
            assert!(f64::try_from((a - b).abs().max()).unwrap() > 0.0);
        }
    }
}
