//! PORT (paper Section 2.3, Appendix D): adversarial training on real and proxy (synthetic)
//! data with the aggregated loss
//!
//! ```text
//! L_agg = γ · E_real[L_adv] + (1 − γ) · E_syn[L_adv],
//! ```
//!
//! computed on one forward pass over a batch of `batch_size` real images (an epoch walks the real
//! set) joined by `synthetic.batch_size` synthetic images drawn uniformly at random every step,
//! so an epoch costs the same whatever the size of the synthetic set. γ = 0.4 by default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `[synthetic]` of a training config: where the proxy images are and how to mix them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    /// An npz with `image` uint8 (N, H, W, C) and `label` (N,) …
    #[serde(default)]
    pub npz: Option<PathBuf>,
    /// … or the seed repository's raw `.bin` (N × 32 × 32 × 3 uint8, memory-mapped) with
    /// `labels` in a `.npy`.
    #[serde(default)]
    pub bin: Option<PathBuf>,
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// Synthetic images per step (0: the real batch size, i.e. 1:1).
    #[serde(default)]
    pub batch_size: usize,
    /// Weight of the real loss.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Use only the first `limit` synthetic images (0: all) — the Figure 9 sweep.
    #[serde(default)]
    pub limit: usize,
}

fn default_gamma() -> f64 {
    0.4
}

impl SyntheticConfig {
    /// Exactly one source and γ in [0, 1].
    pub fn validate(&self) -> Result<()> {
        match (&self.npz, &self.bin, &self.labels) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => {
                return Err(Error::invalid(
                    "synthetic",
                    "either `npz = \"FILE.npz\"`, or `bin = \"FILE.bin\"` with `labels = \"FILE.npy\"`",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid(
                "synthetic.gamma",
                format!("a weight in [0, 1], got {}", self.gamma),
            ));
        }
        Ok(())
    }
}

/// Per-sample weights of a joined batch of `real` then `synthetic` samples: γ/real for the
/// first, (1 − γ)/synthetic for the others, so Σ wᵢ ℓᵢ = L_agg.
pub fn aggregation_weights(gamma: f64, real: usize, synthetic: usize) -> Vec<f64> {
    let mut w = vec![gamma / real.max(1) as f64; real];
    w.extend(std::iter::repeat_n(
        (1.0 - gamma) / synthetic.max(1) as f64,
        synthetic,
    ));
    w
}

#[cfg(feature = "torch")]
pub use with_torch::SyntheticSource;

#[cfg(feature = "torch")]
mod with_torch {
    use tch::{Device, Kind, Tensor};

    use super::SyntheticConfig;
    use crate::data::formats::MappedImages;
    use crate::data::{ImageDataset, read_image_npz};
    use crate::error::{Error, Result};

    /// Where synthetic batches come from: an npz held in memory or a memory-mapped `.bin`.
    pub enum SyntheticSource {
        Memory(ImageDataset),
        Mapped(MappedImages),
    }

    impl SyntheticSource {
        /// Opens the configured source for `classes` classes and checks its image shape.
        pub fn open(config: &SyntheticConfig, classes: usize, shape: [usize; 3]) -> Result<Self> {
            config.validate()?;
            for (field, path) in [
                ("synthetic.npz", &config.npz),
                ("synthetic.bin", &config.bin),
                ("synthetic.labels", &config.labels),
            ] {
                if let Some(path) = path.as_ref().filter(|p| !p.exists()) {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{} does not exist; put the synthetic images there (npz: `image` uint8 (N, H, W, C) and `label`; bin: the seed repository's N×32×32×3 uint8 file with a .npy of labels)",
                            path.display()
                        ),
                    ));
                }
            }
            let source = match (&config.npz, &config.bin, &config.labels) {
                (Some(npz), _, _) => {
                    let set = read_image_npz(npz, classes)?;
                    if set.shape() != shape {
                        return Err(Error::file(
                            npz,
                            format!(
                                "synthetic images are {:?}, the real ones {shape:?} (H, W, C)",
                                set.shape()
                            ),
                        ));
                    }
                    SyntheticSource::Memory(if config.limit > 0 {
                        set.take(config.limit)
                    } else {
                        set
                    })
                }
                (None, Some(bin), Some(labels)) => {
                    if shape != [32, 32, 3] {
                        return Err(Error::invalid(
                            "synthetic.bin",
                            format!("32×32×3 real images for a .bin source, got {shape:?}"),
                        ));
                    }
                    SyntheticSource::Mapped(MappedImages::open(bin, labels, classes)?)
                }
                _ => unreachable!("validated"),
            };
            if source.len() == 0 {
                return Err(Error::invalid("synthetic", "at least one synthetic image"));
            }
            Ok(source)
        }

        fn len(&self) -> usize {
            match self {
                SyntheticSource::Memory(set) => set.len(),
                SyntheticSource::Mapped(m) => m.len(),
            }
        }

        /// `count` images drawn uniformly with replacement from the first `limit` (0: all)
        /// by libtorch's generator (so seeded runs repeat), as NCHW floats in [0, 1].
        pub fn sample(
            &self,
            count: usize,
            limit: usize,
            device: Device,
        ) -> Result<(Tensor, Tensor)> {
            let n = if limit > 0 {
                limit.min(self.len())
            } else {
                self.len()
            };
            let picks: Vec<i64> = Vec::try_from(Tensor::randint(
                n as i64,
                [count as i64],
                (Kind::Int64, Device::Cpu),
            ))
            .map_err(|e: tch::TchError| Error::invalid("synthetic", e.to_string()))?;
            let indices: Vec<usize> = picks.into_iter().map(|i| i as usize).collect();
            let batch = match self {
                SyntheticSource::Memory(set) => {
                    let [h, w, c] = set.shape();
                    let per = h * w * c;
                    let mut pixels = Vec::with_capacity(count * per);
                    for &i in &indices {
                        pixels.extend_from_slice(&set.pixels()[i * per..(i + 1) * per]);
                    }
                    ImageDataset::new(
                        pixels,
                        indices.iter().map(|&i| set.labels()[i]).collect(),
                        set.shape(),
                        set.num_classes(),
                    )?
                }
                SyntheticSource::Mapped(m) => m.gather(&indices)?,
            };
            Ok(crate::train::run::tensors(&batch, device))
        }
    }
}
