//! The arithmetic of a classifier's forward passes. `bf16` runs every forward pass of training,
//! of the attacks inside training and of evaluation attacks under libtorch's autocast
//! (`torch.autocast(device, torch.bfloat16)`): convolutions and matrix products in bfloat16,
//! reductions, softmax and losses in fp32, parameters, gradients and the optimiser in fp32, and
//! the logits handed back as fp32. Certification and the theory core always compute in fp32/f64.

use serde::{Deserialize, Serialize};

/// `precision = "fp32" | "bf16"` in a training config (default fp32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Parses the config spelling (`fp32`, `bf16`), naming `field` when it is neither.
    pub fn parse(field: &str, value: &str) -> crate::error::Result<Self> {
        match value {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(crate::error::Error::invalid(
                field,
                format!("fp32 or bf16, got {other:?}"),
            )),
        }
    }
}

#[cfg(feature = "torch")]
pub use with_torch::with_precision;

#[cfg(feature = "torch")]
mod with_torch {
    use tch::nn::{self, ModuleT};
    use tch::{Device, Kind, Tensor};

    use super::Precision;

    /// `net` computing in `precision` on `device`: unchanged for fp32; for bf16, every forward
    /// pass runs inside an autocast scope and returns fp32 logits.
    pub fn with_precision(
        net: nn::SequentialT,
        precision: Precision,
        device: Device,
    ) -> nn::SequentialT {
        match precision {
            Precision::Fp32 => net,
            Precision::Bf16 => nn::seq_t().add(Autocast { inner: net, device }),
        }
    }

    #[derive(Debug)]
    struct Autocast {
        inner: nn::SequentialT,
        device: Device,
    }

    impl ModuleT for Autocast {
        fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
            let _scope = proxyrobust_torch_ext::Autocast::enter(self.device, Kind::BFloat16)
                .expect("BFloat16 is one of autocast's dtypes");
            self.inner.forward_t(x, train).to_kind(Kind::Float)
        }
    }
}
