//! Classifiers on tch (paper Appendix B and Table 9), one file per family.
//!
//! Parameter names follow the PyTorch modules of `shared/reference/pgd_train_reference.py` and
//! RobustBench (`nn.Sequential` indices for the CNNs: `0.weight`, `0.bias`, `2.weight`, …;
//! attribute paths for the residual networks), so the same safetensors weights load on both
//! sides. docs/models.md lists every layout.

#[cfg(feature = "torch")]
mod cnn;
#[cfg(feature = "torch")]
pub mod layout;
#[cfg(feature = "torch")]
mod mlp;
#[cfg(feature = "torch")]
mod resnet;
#[cfg(feature = "torch")]
mod wide_resnet;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::nn;

use crate::error::{Error, Result};

/// The non-linearity of a WideResNet: ReLU (Zagoruyko & Komodakis; the seed repo) or Swish/SiLU
/// (Gowal et al., the architecture behind the paper's WRN-70-16 results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Swish,
}

/// The classifiers of the paper. In configs and on the command line an architecture is a
/// string: `cnn2`, `cnn4`, `mlp`, `resnet18`, `resnet50`, `preact-resnet18`, or `wrn-D-W`
/// (`wrn-28-10`, `wrn-34-10`, `wrn-70-16`, any depth with (D − 4) divisible by 6) with an
/// optional `-swish` suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Architecture {
    /// Table 9's CNN-2: conv16-pool-conv32-pool-linear.
    Cnn2,
    /// Table 9's CNN-4: conv16-conv16-pool-conv32-conv32-pool-linear.
    Cnn4,
    /// A two-hidden-layer perceptron (256, 256).
    Mlp,
    /// The CIFAR-style ResNet-18 (Appendix B): BasicBlocks [2, 2, 2, 2].
    Resnet18,
    /// The CIFAR-style ResNet-50: Bottlenecks [3, 4, 6, 3], expansion 4.
    Resnet50,
    /// Pre-activation ResNet-18 (He et al., 2016b; Rice et al.'s layout with a final batch norm).
    PreactResnet18,
    /// WideResNet-depth-width (Zagoruyko & Komodakis, 2016).
    WideResnet {
        depth: u32,
        width: u32,
        activation: Activation,
    },
}

impl FromStr for Architecture {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        let expected = || {
            Error::invalid(
                "model",
                format!(
                    "cnn2, cnn4, mlp, resnet18, resnet50, preact-resnet18 or wrn-DEPTH-WIDTH[-swish] with (DEPTH − 4) divisible by 6, got {name:?}"
                ),
            )
        };
        Ok(match name {
            "cnn2" => Self::Cnn2,
            "cnn4" => Self::Cnn4,
            "mlp" => Self::Mlp,
            "resnet18" => Self::Resnet18,
            "resnet50" => Self::Resnet50,
            "preact-resnet18" => Self::PreactResnet18,
            _ => {
                let rest = name.strip_prefix("wrn-").ok_or_else(expected)?;
                let (rest, activation) = match rest.strip_suffix("-swish") {
                    Some(rest) => (rest, Activation::Swish),
                    None => (rest, Activation::Relu),
                };
                let (depth, width) = rest.split_once('-').ok_or_else(expected)?;
                let depth: u32 = depth.parse().map_err(|_| expected())?;
                let width: u32 = width.parse().map_err(|_| expected())?;
                if depth < 10 || !(depth - 4).is_multiple_of(6) || width == 0 {
                    return Err(expected());
                }
                Self::WideResnet {
                    depth,
                    width,
                    activation,
                }
            }
        })
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cnn2 => write!(f, "cnn2"),
            Self::Cnn4 => write!(f, "cnn4"),
            Self::Mlp => write!(f, "mlp"),
            Self::Resnet18 => write!(f, "resnet18"),
            Self::Resnet50 => write!(f, "resnet50"),
            Self::PreactResnet18 => write!(f, "preact-resnet18"),
            Self::WideResnet {
                depth,
                width,
                activation,
            } => {
                write!(
                    f,
                    "wrn-{depth}-{width}{}",
                    if *activation == Activation::Swish {
                        "-swish"
                    } else {
                        ""
                    }
                )
            }
        }
    }
}

impl TryFrom<String> for Architecture {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        name.parse()
    }
}

impl From<Architecture> for String {
    fn from(arch: Architecture) -> String {
        arch.to_string()
    }
}

#[cfg(feature = "torch")]
/// Builds `arch` for inputs of shape (C, H, W) and `classes` outputs in `vs`, running in the
/// default memory layout ([`layout::Layout::default`], channels-last): the 4-D weights are
/// re-stored in it and inputs are brought into it first.
pub fn build(
    vs: &nn::VarStore,
    arch: Architecture,
    input: [i64; 3],
    classes: i64,
) -> Result<nn::SequentialT> {
    build_in_layout(vs, arch, input, classes, layout::Layout::default())
}

#[cfg(feature = "torch")]
/// [`build`] in an explicit memory `layout` (the interop tests compare both layouts with PyTorch).
pub fn build_in_layout(
    vs: &nn::VarStore,
    arch: Architecture,
    input: [i64; 3],
    classes: i64,
    layout: layout::Layout,
) -> Result<nn::SequentialT> {
    let parts = build_parts_in_layout(vs, arch, input, classes, layout)?;
    Ok(parts.features.add(parts.head))
}

/// A classifier split before its last layer: `features` maps an input to its penultimate-layer
/// representation (the space the classifier-feature FID of [`crate::proxy::quality`] uses),
/// `head` is the linear layer from it to the logits. Parameter names are the whole model's.
#[cfg(feature = "torch")]
pub struct Parts {
    pub features: nn::SequentialT,
    pub head: nn::Linear,
}

/// The model of [`build`] as [`Parts`] (same parameter names, same default layout).
#[cfg(feature = "torch")]
pub fn build_parts(
    vs: &nn::VarStore,
    arch: Architecture,
    input: [i64; 3],
    classes: i64,
) -> Result<Parts> {
    build_parts_in_layout(vs, arch, input, classes, layout::Layout::default())
}

#[cfg(feature = "torch")]
fn build_parts_in_layout(
    vs: &nn::VarStore,
    arch: Architecture,
    input: [i64; 3],
    classes: i64,
    layout: layout::Layout,
) -> Result<Parts> {
    let parts = build_layers(&vs.root(), arch, input, classes)?;
    layout.apply_to_variables(vs);
    Ok(Parts {
        features: nn::seq_t()
            .add_fn(move |x| layout.apply(x))
            .add(parts.features),
        head: parts.head,
    })
}

#[cfg(feature = "torch")]
fn build_layers(
    root: &nn::Path,
    arch: Architecture,
    input: [i64; 3],
    classes: i64,
) -> Result<Parts> {
    let [c, h, w] = input;
    if c <= 0 || h <= 0 || w <= 0 || classes < 2 {
        return Err(Error::invalid(
            "model",
            format!("a positive input shape and ≥ 2 classes, got {input:?} and {classes}"),
        ));
    }
    match arch {
        Architecture::Cnn2 | Architecture::Cnn4 => {
            if h % 4 != 0 || w % 4 != 0 {
                return Err(Error::invalid(
                    "model",
                    format!("{arch} needs height and width divisible by 4, got {h}×{w}"),
                ));
            }
            Ok(if arch == Architecture::Cnn2 {
                cnn::cnn2(root, input, classes)
            } else {
                cnn::cnn4(root, input, classes)
            })
        }
        Architecture::Mlp => Ok(mlp::mlp(root, c * h * w, &[256, 256], classes)),
        Architecture::Resnet18 => Ok(resnet::resnet(
            root,
            resnet::Block::Basic,
            [2, 2, 2, 2],
            c,
            classes,
        )),
        Architecture::Resnet50 => Ok(resnet::resnet(
            root,
            resnet::Block::Bottleneck,
            [3, 4, 6, 3],
            c,
            classes,
        )),
        Architecture::PreactResnet18 => Ok(resnet::preact_resnet18(root, c, classes)),
        Architecture::WideResnet {
            depth,
            width,
            activation,
        } => Ok(wide_resnet::wide_resnet(
            root,
            i64::from(depth),
            i64::from(width),
            activation,
            c,
            classes,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "cnn2",
            "cnn4",
            "mlp",
            "resnet18",
            "resnet50",
            "preact-resnet18",
            "wrn-28-10",
            "wrn-34-10",
            "wrn-70-16-swish",
        ] {
            assert_eq!(name.parse::<Architecture>().unwrap().to_string(), name);
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for name in [
            "resnet",
            "wrn-27-10",
            "wrn-28",
            "wrn-28-0",
            "wrn-28-10-gelu",
            "wrn-4-1",
        ] {
            let message = name.parse::<Architecture>().unwrap_err().to_string();
            assert!(message.contains("wrn-DEPTH-WIDTH"), "{message}");
        }
    }
}
