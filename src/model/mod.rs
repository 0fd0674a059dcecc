//! Classifiers on tch (paper Appendix B and Table 9), one file per family.
//!
//! Parameter names follow the PyTorch modules of `shared/reference/pgd_train_reference.py`
//! (`nn.Sequential` indices for the CNNs: `0.weight`, `0.bias`, `2.weight`, …), so the same
//! safetensors weights load on both sides.

#[cfg(feature = "torch")]
mod cnn;
#[cfg(feature = "torch")]
mod mlp;
#[cfg(feature = "torch")]
mod resnet;

use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::nn;

#[cfg(feature = "torch")]
use crate::error::{Error, Result};

/// Architectures built so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Table 9's CNN-2: conv16-pool-conv32-pool-linear.
    Cnn2,
    /// Table 9's CNN-4: conv16-conv16-pool-conv32-conv32-pool-linear.
    Cnn4,
    /// A two-hidden-layer perceptron (256, 256).
    Mlp,
    /// The CIFAR-style ResNet-18 (Appendix B).
    Resnet18,
}

#[cfg(feature = "torch")]
/// Builds `arch` for inputs of shape (C, H, W) and `classes` outputs under `root`.
pub fn build(root: &nn::Path, arch: Architecture, input: [i64; 3], classes: i64) -> Result<nn::SequentialT> {
    let [c, h, w] = input;
    if c <= 0 || h <= 0 || w <= 0 || classes < 2 {
        return Err(Error::invalid("model", format!("a positive input shape and ≥ 2 classes, got {input:?} and {classes}")));
    }
    match arch {
        Architecture::Cnn2 | Architecture::Cnn4 => {
            if h % 4 != 0 || w % 4 != 0 {
                return Err(Error::invalid("model", format!("{arch:?} needs height and width divisible by 4, got {h}×{w}")));
            }
            Ok(if arch == Architecture::Cnn2 { cnn::cnn2(root, input, classes) } else { cnn::cnn4(root, input, classes) })
        }
        Architecture::Mlp => Ok(mlp::mlp(root, c * h * w, &[256, 256], classes)),
        Architecture::Resnet18 => Ok(resnet::resnet18(root, c, classes)),
    }
}
