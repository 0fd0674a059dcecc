//! Where the floats of images and convolution weights sit in memory.
//!
//! A tensor of logical shape (N, C, H, W) can be stored NCHW ("contiguous") or NHWC
//! ("channels-last": the C values of one pixel side by side). The shape, the values and every
//! result are the same either way; only speed differs. On CPU, libtorch's oneDNN convolutions
//! take a fast path when both the activations and the 4-D weights are channels-last: measured
//! with `scripts/bench-train.sh` and `scripts/bench-attack.sh` (docs/benchmarks.md), CNN-4
//! training and attack forwards run well ahead of the contiguous layout. On CUDA the models keep
//! the contiguous layout, which has not been measured against channels-last yet.
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

impl Layout {
    /// The layout the models use on `device`: channels-last on CPU, contiguous elsewhere.
    pub fn for_device(device: Device) -> Layout {
        match device {
            Device::Cpu => Layout::ChannelsLast,
            _ => Layout::Contiguous,
        }
    }

    /// `t` stored in this layout (a copy only when it is not already); tensors that are not 4-D
    /// are returned as they are.
    pub fn apply(self, t: &Tensor) -> Tensor {
        match self {
            Layout::ChannelsLast if t.dim() == 4 => t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]),
            Layout::Contiguous if t.dim() == 4 => t.contiguous(),
            _ => t.shallow_clone(),
        }
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
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(name, t)| (name, contiguous_cpu(&t))).collect();
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
