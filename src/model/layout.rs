//! Where the floats of images and convolution weights sit in memory.
//!
//! A tensor of logical shape (N, C, H, W) can be stored NCHW ("contiguous") or NHWC
//! ("channels-last": the C values of one pixel side by side). The shape, the values and every
//! result are the same either way; only speed differs. On CPU, libtorch's oneDNN convolutions
//! take a fast path when both the activations and the 4-D weights are channels-last: measured
//! with `scripts/bench-train.sh` and `scripts/bench-attack.sh` (docs/benchmarks.md), CNN-4
//! training and attack forwards run well ahead of the contiguous layout. On CUDA (cuDNN, an H200)
//! channels-last also wins for ResNet-18 (`examples/layout_probe.rs`, batch 128: eval forward
//! 1.33 ms against 2.09 ms, forward + input gradient 4.2–4.7 ms against 5.3 ms) and ties for
//! CNN-4, so the models use it on every device.
//!
//! Weights files are always written contiguous ([`save_weights`], [`contiguous_cpu`]), so the
//! safetensors files do not depend on the layout and load unchanged in PyTorch.

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, TchError, Tensor};

/// The memory layout of 4-D tensors (images, activations, convolution weights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// NCHW, PyTorch's default.
    Contiguous,
    /// NHWC strides behind the NCHW shape (PyTorch's `torch.channels_last`).
    ChannelsLast,
}

impl Default for Layout {
    /// The layout the models use, on CPU and CUDA alike: channels-last (measured, module docs).
    fn default() -> Layout {
        Layout::ChannelsLast
    }
}

impl Layout {
    /// The strides of an (N, C, H, W) tensor stored in this layout. They are written out even
    /// for size-1 dimensions: with one channel both layouts hold the same bytes, and only the
    /// strides tell libtorch which convolution path to take.
    pub fn strides(self, [_, c, h, w]: [i64; 4]) -> [i64; 4] {
        match self {
            Layout::Contiguous => [c * h * w, h * w, w, 1],
            Layout::ChannelsLast => [h * w * c, 1, w * c, c],
        }
    }

    /// `t` stored in this layout: the tensor itself when its strides already are the layout's,
    /// otherwise a copy (differentiable, so gradients flow back to `t`). Tensors that are not
    /// 4-D are returned as they are.
    pub fn apply(self, t: &Tensor) -> Tensor {
        let Ok(size) = <[i64; 4]>::try_from(t.size()) else {
            return t.shallow_clone();
        };
        let strides = self.strides(size);
        if t.stride() == strides {
            return t.shallow_clone();
        }
        let mut stored = Tensor::empty_strided(size, strides, (t.kind(), t.device()));
        stored.copy_(t);
        stored
    }

    /// Re-stores every 4-D variable of `vs` (the convolution weights) in this layout, in place:
    /// the variables keep their identity, names, values and gradient tracking.
    pub fn apply_to_variables(self, vs: &VarStore) {
        tch::no_grad(|| {
            for (_, mut variable) in vs.variables() {
                if variable.dim() == 4 {
                    let stored = self.apply(&variable.detach());
                    variable.set_data(&stored);
                }
            }
        });
    }
}

/// A contiguous CPU copy of `t`, detached: what safetensors files hold.
pub fn contiguous_cpu(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).contiguous()
}

/// Writes every variable of `vs` under its name as a contiguous CPU tensor (PyTorch's
/// state_dict layout, whatever [`Layout`] the model runs in).
pub fn save_weights(vs: &VarStore, path: &Path) -> Result<(), TchError> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, contiguous_cpu(&t)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn channels_last_keeps_shape_and_values_and_permutes_strides() {
        let t = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let cl = Layout::ChannelsLast.apply(&t);
        assert_eq!(cl.size(), [2, 3, 4, 5]);
        // NHWC storage: channel stride 1, width stride C, height stride W·C, batch stride H·W·C.
        assert_eq!(cl.stride(), [60, 1, 15, 3]);
        assert_eq!((&cl - &t).abs().max().double_value(&[]), 0.0);
        let back = Layout::Contiguous.apply(&cl);
        assert_eq!(back.stride(), [60, 20, 5, 1]);
        assert_eq!(contiguous_cpu(&cl).stride(), [60, 20, 5, 1]);
        // One channel: the same bytes, but the strides must still say channels-last.
        let gray = Tensor::rand([2, 1, 4, 5], (Kind::Float, Device::Cpu));
        assert_eq!(Layout::ChannelsLast.apply(&gray).stride(), [20, 1, 5, 1]);
    }

    #[test]
    fn gradients_flow_through_the_layout_change() {
        let x = Tensor::rand([2, 3, 4, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let weights = Tensor::rand([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let loss = (Layout::ChannelsLast.apply(&x) * &weights).sum(Kind::Float);
        let grad = Tensor::run_backward(&[loss], &[&x], false, false).remove(0);
        assert_eq!((grad - weights).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn variables_change_storage_but_not_identity() {
        let vs = VarStore::new(Device::Cpu);
        let weight = vs.root().randn_standard("weight", &[4, 3, 2, 2]);
        let bias = vs.root().zeros("bias", &[4]);
        let before = weight.copy();
        Layout::ChannelsLast.apply_to_variables(&vs);
        // The handle taken before the change sees the new strides: same variable.
        assert_eq!(weight.stride(), [12, 1, 6, 3]);
        assert!(weight.requires_grad());
        assert_eq!((&weight - &before).abs().max().double_value(&[]), 0.0);
        assert_eq!(bias.stride(), [1]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        save_weights(&vs, &path).unwrap();
        let saved = Tensor::read_safetensors(&path).unwrap();
        let (_, w) = saved.iter().find(|(k, _)| k == "weight").unwrap();
        assert_eq!((w - &before).abs().max().double_value(&[]), 0.0);
    }
}
