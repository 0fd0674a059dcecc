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

use crate::error::Result;

/// Where the proxy images of `[synthetic]` are.
#[derive(Clone, Debug, PartialEq)]
pub enum SyntheticImages {
    /// An npz with `image` uint8 (N, H, W, C) and `label` (N,), held in memory (`npz = "…"`).
    Npz(PathBuf),
    /// The seed repository's raw `.bin` (N × 32 × 32 × 3 uint8, memory-mapped) with its labels
    /// in a `.npy` (`bin = "…"`, `labels = "…"`).
    Bin { images: PathBuf, labels: PathBuf },
}

/// `[synthetic]` of a training config: where the proxy images are and how to mix them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "SyntheticFields", into = "SyntheticFields")]
pub struct SyntheticConfig {
    pub images: SyntheticImages,
    /// Synthetic images per step (0: the real batch size, i.e. 1:1).
    pub batch_size: usize,
    /// Weight γ of the real loss.
    pub gamma: f64,
    /// Use only the first `limit` synthetic images (0: all) — the Figure 9 sweep.
    pub limit: usize,
}

/// `[synthetic]` as written in TOML.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyntheticFields {
    #[serde(default)]
    npz: Option<PathBuf>,
    #[serde(default)]
    bin: Option<PathBuf>,
    #[serde(default)]
    labels: Option<PathBuf>,
    #[serde(default)]
    batch_size: usize,
    #[serde(default = "default_gamma")]
    gamma: f64,
    #[serde(default)]
    limit: usize,
}

fn default_gamma() -> f64 {
    0.4
}

impl TryFrom<SyntheticFields> for SyntheticConfig {
    type Error = String;

    fn try_from(f: SyntheticFields) -> std::result::Result<Self, String> {
        let images = match (f.npz, f.bin, f.labels) {
            (Some(npz), None, None) => SyntheticImages::Npz(npz),
            (None, Some(images), Some(labels)) => SyntheticImages::Bin { images, labels },
            _ => {
                return Err("synthetic: either `npz = \"FILE.npz\"`, or `bin = \"FILE.bin\"` with `labels = \"FILE.npy\"`".into());
            }
        };
        Ok(SyntheticConfig {
            images,
            batch_size: f.batch_size,
            gamma: f.gamma,
            limit: f.limit,
        })
    }
}

impl From<SyntheticConfig> for SyntheticFields {
    fn from(c: SyntheticConfig) -> Self {
        let (npz, bin, labels) = match c.images {
            SyntheticImages::Npz(npz) => (Some(npz), None, None),
            SyntheticImages::Bin { images, labels } => (None, Some(images), Some(labels)),
        };
        SyntheticFields {
            npz,
            bin,
            labels,
            batch_size: c.batch_size,
            gamma: c.gamma,
            limit: c.limit,
        }
    }
}

impl SyntheticConfig {
    /// γ in [0, 1].
    pub fn validate(&self) -> Result<()> {
        crate::config::unit_interval("synthetic.gamma", self.gamma)
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
pub use with_torch::{PortBatches, StepBatch, SyntheticSource};

#[cfg(feature = "torch")]
mod with_torch {
    use std::path::Path;

    use tch::{Device, Kind, Tensor};

    use super::{SyntheticConfig, SyntheticImages, aggregation_weights};
    use crate::data::augment::Augment;
    use crate::data::formats::MappedImages;
    use crate::data::{ImageDataset, read_image_npz};
    use crate::error::{Error, Result};
    use crate::train::classifier::tensors;

    /// The inputs of one training step: the real batch, then (with PORT) the synthetic images,
    /// and the per-sample weights of L_agg.
    pub struct StepBatch {
        pub inputs: Tensor,
        pub labels: Tensor,
        /// `None` without synthetic data: the loss is then the plain mean.
        pub weights: Option<Tensor>,
        /// How many of the leading rows are real (the epoch's metrics count only those).
        pub real: i64,
    }

    impl StepBatch {
        /// A batch of real images only.
        pub fn real_only(inputs: Tensor, labels: Tensor) -> Self {
            let real = inputs.size()[0];
            StepBatch {
                inputs,
                labels,
                weights: None,
                real,
            }
        }

        /// The step's loss from per-sample losses: the mean, or L_agg = Σ wᵢ ℓᵢ with PORT.
        pub fn loss(&self, per_sample: &Tensor) -> Tensor {
            match &self.weights {
                None => per_sample.mean(Kind::Float),
                Some(w) => (per_sample * w).sum(Kind::Float),
            }
        }
    }

    /// PORT's batch mixing: joins each real batch with synthetic images drawn uniformly at
    /// random, weighted so that the summed loss is L_agg (paper Section 2.3).
    pub struct PortBatches {
        source: SyntheticSource,
        batch_size: usize,
        gamma: f64,
        limit: usize,
    }

    impl PortBatches {
        /// Opens the `[synthetic]` images for `classes` classes of real images of `shape`.
        pub fn open(config: &SyntheticConfig, classes: usize, shape: [usize; 3]) -> Result<Self> {
            Ok(PortBatches {
                source: SyntheticSource::open(config, classes, shape)?,
                batch_size: config.batch_size,
                gamma: config.gamma,
                limit: config.limit,
            })
        }

        /// The real batch `(x, y)` (augmented already) joined by `batch_size` synthetic images
        /// (as many as the real ones when 0), which `augment` augments in turn.
        pub fn join(&self, x: Tensor, y: Tensor, augment: &Augment) -> Result<StepBatch> {
            let real = x.size()[0];
            let count = if self.batch_size == 0 {
                real as usize
            } else {
                self.batch_size
            };
            let (xs, ys) = self.source.sample(count, self.limit, x.device())?;
            let weights =
                Tensor::from_slice(&aggregation_weights(self.gamma, real as usize, count))
                    .to_kind(Kind::Float)
                    .to_device(x.device());
            Ok(StepBatch {
                inputs: Tensor::cat(&[x, augment.apply(&xs)], 0),
                labels: Tensor::cat(&[&y, &ys], 0),
                weights: Some(weights),
                real,
            })
        }
    }

    /// Where synthetic batches come from: an npz held in memory or a memory-mapped `.bin`.
    pub enum SyntheticSource {
        Memory(ImageDataset),
        Mapped(MappedImages),
    }

    /// Refuses a configured file that does not exist, naming its field.
    fn existing(field: &str, path: &Path) -> Result<()> {
        if path.exists() {
            return Ok(());
        }
        Err(Error::invalid(
            field,
            format!(
                "{} does not exist; put the synthetic images there (npz: `image` uint8 (N, H, W, C) and `label`; bin: the seed repository's N×32×32×3 uint8 file with a .npy of labels)",
                path.display()
            ),
        ))
    }

    impl SyntheticSource {
        /// Opens the configured source for `classes` classes and checks its image shape.
        pub fn open(config: &SyntheticConfig, classes: usize, shape: [usize; 3]) -> Result<Self> {
            config.validate()?;
            let source = match &config.images {
                SyntheticImages::Npz(npz) => {
                    existing("synthetic.npz", npz)?;
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
                    SyntheticSource::Memory(set.subset(config.limit))
                }
                SyntheticImages::Bin { images, labels } => {
                    existing("synthetic.bin", images)?;
                    existing("synthetic.labels", labels)?;
                    if shape != [32, 32, 3] {
                        return Err(Error::invalid(
                            "synthetic.bin",
                            format!("32×32×3 real images for a .bin source, got {shape:?}"),
                        ));
                    }
                    SyntheticSource::Mapped(MappedImages::open(images, labels, classes)?)
                }
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
            Ok(tensors(&batch, device))
        }
    }
}
