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
pub use with_torch::{Draws, PortBatches, StepBatch, SyntheticSource};

#[cfg(feature = "torch")]
mod with_torch {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::mpsc::{Receiver, sync_channel};
    use std::thread::JoinHandle;

    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use tch::{Device, Kind, Tensor};

    use super::{SyntheticConfig, SyntheticImages};
    use crate::data::augment::Augment;
    use crate::data::formats::MappedImages;
    use crate::data::{ImageDataset, read_image_npz};
    use crate::error::{Error, Result};

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
    /// random, weighted so that the summed loss is L_agg (paper Section 2.3). The draws are
    /// gathered by a background thread a few steps ahead of training ([`PortBatches::start`]).
    pub struct PortBatches {
        source: Arc<SyntheticSource>,
        batch_size: usize,
        gamma: f64,
        limit: usize,
        prefetch: Option<Prefetch>,
    }

    /// The steps a run will take, for the background thread to draw their synthetic batches
    /// in order: `epochs` epochs of `real_per_step.len()` steps, starting at `from` (epoch, step).
    pub struct Draws {
        pub seed: u64,
        pub from: (usize, usize),
        pub epochs: usize,
        /// The real batch size of each step of an epoch (the last may be short).
        pub real_per_step: Vec<usize>,
        pub device: Device,
    }

    /// One step's synthetic images (uint8 NHWC on the host, pinned for a CUDA device) and labels.
    struct Drawn {
        at: (usize, usize),
        images: Tensor,
        labels: Tensor,
    }

    struct Prefetch {
        receiver: Option<Receiver<Result<Drawn>>>,
        worker: Option<JoinHandle<()>>,
    }

    impl Drop for Prefetch {
        fn drop(&mut self) {
            // Dropping the receiver makes the worker's next send fail, so it ends.
            self.receiver.take();
            if let Some(worker) = self.worker.take() {
                let _ = worker.join();
            }
        }
    }

    /// Steps the background thread may run ahead of training.
    const AHEAD: usize = 4;

    impl PortBatches {
        /// Opens the `[synthetic]` images for `classes` classes of real images of `shape`.
        pub fn open(config: &SyntheticConfig, classes: usize, shape: [usize; 3]) -> Result<Self> {
            Ok(PortBatches {
                source: Arc::new(SyntheticSource::open(config, classes, shape)?),
                batch_size: config.batch_size,
                gamma: config.gamma,
                limit: config.limit,
                prefetch: None,
            })
        }

        /// Synthetic images per step for a real batch of `real` images.
        fn count(&self, real: usize) -> usize {
            if self.batch_size == 0 {
                real
            } else {
                self.batch_size
            }
        }

        /// Starts the background thread that draws the synthetic batches of `draws`' steps.
        /// Step (e, s) draws its indices from a generator seeded by (seed, e, s) alone, so a
        /// resumed run draws what the uninterrupted run drew.
        pub fn start(&mut self, draws: Draws) {
            let (sender, receiver) = sync_channel(AHEAD);
            let source = self.source.clone();
            let limit = self.limit;
            let counts: Vec<usize> = draws.real_per_step.iter().map(|&r| self.count(r)).collect();
            let worker = std::thread::spawn(move || {
                let (first_epoch, first_step) = draws.from;
                for epoch in first_epoch..draws.epochs {
                    let from = if epoch == first_epoch { first_step } else { 0 };
                    for (step, &count) in counts.iter().enumerate().skip(from) {
                        let mut rng = StdRng::seed_from_u64(
                            crate::train::run::derived_seed(draws.seed, epoch, step as i64) as u64
                                ^ SYNTHETIC_STREAM,
                        );
                        let drawn =
                            source
                                .draw(&mut rng, count, limit)
                                .map(|(images, labels)| Drawn {
                                    at: (epoch, step),
                                    images: pinned(images, draws.device),
                                    labels: pinned(labels, draws.device),
                                });
                        if sender.send(drawn).is_err() {
                            return;
                        }
                    }
                }
            });
            self.prefetch = Some(Prefetch {
                receiver: Some(receiver),
                worker: Some(worker),
            });
        }

        /// The real batch `(x, y)` of step `at` (augmented already) joined by its synthetic
        /// images, which `augment` augments in turn, with L_agg's per-sample weights. The copy to
        /// the device is asynchronous from pinned memory on CUDA; nothing waits for the device.
        pub fn join(
            &self,
            x: Tensor,
            y: Tensor,
            augment: &Augment,
            at: (usize, usize),
        ) -> Result<StepBatch> {
            let device = x.device();
            let receiver = self
                .prefetch
                .as_ref()
                .and_then(|p| p.receiver.as_ref())
                .ok_or_else(|| Error::invalid("synthetic", "PortBatches::start before join"))?;
            let drawn = receiver.recv().map_err(|_| {
                Error::invalid("synthetic", "the synthetic batch reader stopped early")
            })??;
            if drawn.at != at {
                return Err(Error::invalid(
                    "synthetic",
                    format!(
                        "the synthetic batch of step {at:?}, the reader gave {:?}",
                        drawn.at
                    ),
                ));
            }
            let real = x.size()[0];
            let count = drawn.labels.size()[0];
            let xs = drawn
                .images
                .to_device_(device, Kind::Uint8, true, false)
                .permute([0, 3, 1, 2])
                .to_kind(Kind::Float)
                / 255.0;
            let ys = drawn.labels.to_device_(device, Kind::Int64, true, false);
            let weights = Tensor::cat(
                &[
                    Tensor::full([real], self.gamma / real as f64, (Kind::Float, device)),
                    Tensor::full(
                        [count],
                        (1.0 - self.gamma) / count as f64,
                        (Kind::Float, device),
                    ),
                ],
                0,
            );
            Ok(StepBatch {
                inputs: Tensor::cat(&[x, augment.apply(&xs)], 0),
                labels: Tensor::cat(&[&y, &ys], 0),
                weights: Some(weights),
                real,
            })
        }
    }

    /// A stream of its own for the synthetic draws, apart from libtorch's generator.
    const SYNTHETIC_STREAM: u64 = 0x5EED_0F5E_75EE_D0F5;

    /// `t` in page-locked memory when it is bound for a CUDA device (so the copy can overlap
    /// computation), else as it is.
    fn pinned(t: Tensor, device: Device) -> Tensor {
        match device {
            Device::Cuda(_) => t.pin_memory(device),
            _ => t,
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

        /// `count` images drawn uniformly with replacement from the first `limit` (0: all) by
        /// `rng`, as uint8 NHWC images and int64 labels on the host.
        fn draw(&self, rng: &mut StdRng, count: usize, limit: usize) -> Result<(Tensor, Tensor)> {
            let n = if limit > 0 {
                limit.min(self.len())
            } else {
                self.len()
            };
            let indices: Vec<usize> = (0..count).map(|_| rng.random_range(0..n)).collect();
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
            let [h, w, c] = batch.shape().map(|v| v as i64);
            Ok((
                Tensor::from_slice(batch.pixels()).view([count as i64, h, w, c]),
                Tensor::from_slice(batch.labels()),
            ))
        }
    }
}
