//! Training: configs, objectives, PORT's batch mixing and learning-rate schedules (always
//! built), and on tch (feature `torch`) the loop (`run`), checkpoints (`checkpoint`), classifier
//! construction and weight loading (`classifier`), the weight average (`ema`) and SGD (`sgd`).

pub mod adam;
#[cfg(feature = "torch")]
pub(crate) mod checkpoint;
#[cfg(feature = "torch")]
pub mod classifier;
#[cfg(feature = "torch")]
mod ema;
pub mod objective;
pub mod port;
pub mod precision;
pub mod schedule;
#[cfg(feature = "torch")]
mod sgd;
#[cfg(feature = "torch")]
pub mod tensors;

#[cfg(feature = "torch")]
pub use sgd::Sgd;

#[cfg(feature = "torch")]
pub(crate) mod run;

#[cfg(feature = "torch")]
pub use checkpoint::Start;
#[cfg(feature = "torch")]
pub use classifier::{LoadedClassifier, load_classifier};
#[cfg(feature = "torch")]
pub use run::{TrainOutcome, run};

use serde::{Deserialize, Serialize};

use crate::config::{self, Device, Validate, non_negative_finite, unit_interval_open};
use crate::data::DatasetSource;
use crate::error::{Error, Result};
use crate::model::Architecture;
use schedule::LearningRate;

/// `experiments/mnist_cnn4.toml` and friends.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    /// An architecture name (see [`Architecture`]): `cnn4`, `resnet18`, `wrn-34-10`, ….
    pub model: Architecture,
    #[serde(default = "default_dataset")]
    pub dataset: DatasetSource,
    /// Use only the first `train_subset` training images (0: all).
    #[serde(default)]
    pub train_subset: usize,
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// `auto` (CUDA when present), `cpu` or `cuda`.
    #[serde(default)]
    pub device: Device,
    /// CPU threads for libtorch (0: libtorch's default).
    #[serde(default)]
    pub threads: usize,
    /// Also checkpoint every this many steps inside an epoch (0: at epoch ends only).
    #[serde(default)]
    pub checkpoint_every_steps: usize,
    /// The training loss and accuracy are summed on the device and read to the host (which waits
    /// for the device) once every this many steps, at checkpoints and at the end of an epoch; a
    /// non-finite loss is caught then. Default 50.
    #[serde(default = "default_log_every_steps")]
    pub log_every_steps: usize,
    /// In a data-parallel run (docs/distributed.md), a collective that has not completed after
    /// this many seconds — another rank died or hangs — stops the run with an error. Default 600.
    #[serde(default = "default_collective_timeout")]
    pub collective_timeout_seconds: u64,
    #[serde(default)]
    pub optimizer: SgdConfig,
    /// `[augment]`: random crop with padding and flips (none by default).
    #[serde(default)]
    pub augment: crate::data::augment::Augment,
    /// Standardise inputs by the dataset's mean and deviation ([`crate::data::DatasetInfo`])
    /// inside the model (off by default, as in the seed repository).
    #[serde(default)]
    pub normalize: bool,
    /// `[objective]`: natural (default), pgd, trades, fgsm or free ([`objective::Objective`]).
    #[serde(default)]
    pub objective: objective::Objective,
    /// Ramp the objective's ε (and attack step) linearly from 0 over this many epochs
    /// (fractional allowed; 0: full ε from the start) — small models at MNIST's ε = 0.3
    /// otherwise collapse to a constant prediction.
    #[serde(default)]
    pub epsilon_warmup_epochs: f64,
    /// Label smoothing of the cross-entropy (0: none).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Exponential moving average of the weights with this decay (0: off); evaluation and
    /// `weights.safetensors` then use the average (`train::ema`).
    #[serde(default)]
    pub ema_decay: f64,
    /// `[synthetic]`: train with PORT on real plus these proxy images ([`port::SyntheticConfig`]).
    #[serde(default)]
    pub synthetic: Option<port::SyntheticConfig>,
    /// Arithmetic of the forward passes: "fp32" (default) or "bf16" autocast (`precision`).
    #[serde(default)]
    pub precision: precision::Precision,
    pub lr: LearningRate,
}

fn default_name() -> String {
    "train".into()
}
fn default_dataset() -> DatasetSource {
    DatasetSource::Mnist10k
}
fn default_batch() -> usize {
    128
}
fn default_log_every_steps() -> usize {
    50
}
fn default_collective_timeout() -> u64 {
    600
}

/// `[optimizer]`: SGD with momentum, Nesterov and weight decay (Appendix B: 0.9, 5e-4).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Scale the gradient down to this L2 norm (over all parameters together) when it is
    /// longer, before weight decay and momentum — PyTorch's `clip_grad_norm_` (0: no clipping,
    /// the default). Each epoch's mean norm before clipping is `grad_norm` in `metrics.csv`.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_grad_norm: f64,
}

/// Whether an optional field is at its "off" value, so configs that leave it off serialise as
/// they did before the field existed (experiment settings keys and resume records included).
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            max_grad_norm: 0.0,
        }
    }
}

impl TrainConfig {
    /// Reads and validates a config file; errors name the file, line and field.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        config::load(path)
    }

    /// The training split (its first `train_subset` images when set) and the test split.
    pub fn splits(&self) -> Result<(crate::data::ImageDataset, crate::data::ImageDataset)> {
        let (train, test) = self.dataset.load()?;
        if train.is_empty() || test.is_empty() {
            return Err(Error::invalid(
                "dataset",
                format!(
                    "at least one training and one test image, got {} and {}",
                    train.len(),
                    test.len()
                ),
            ));
        }
        if train.shape() != test.shape() || train.num_classes() != test.num_classes() {
            return Err(Error::invalid(
                "dataset",
                format!(
                    "test images like the training images, got {:?} with {} classes and {:?} with {}",
                    train.shape(),
                    train.num_classes(),
                    test.shape(),
                    test.num_classes()
                ),
            ));
        }
        if self.train_subset > train.len() {
            return Err(Error::invalid(
                "train_subset",
                format!(
                    "at most the {} training images of the dataset (0: all), got {}",
                    train.len(),
                    self.train_subset
                ),
            ));
        }
        Ok((train.subset(self.train_subset), test))
    }
}

impl Validate for TrainConfig {
    /// Range checks of every field.
    fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                "a non-empty name without path separators",
            ));
        }
        config::at_least("epochs", self.epochs, 1)?;
        config::at_least("batch_size", self.batch_size, 1)?;
        config::at_least("log_every_steps", self.log_every_steps, 1)?;
        config::at_least(
            "collective_timeout_seconds",
            self.collective_timeout_seconds as usize,
            1,
        )?;
        unit_interval_open("optimizer.momentum", self.optimizer.momentum)?;
        non_negative_finite("optimizer.weight_decay", self.optimizer.weight_decay)?;
        non_negative_finite("optimizer.max_grad_norm", self.optimizer.max_grad_norm)?;
        self.augment.validate()?;
        self.objective.validate()?;
        if !(self.epsilon_warmup_epochs >= 0.0 && self.epsilon_warmup_epochs <= self.epochs as f64)
        {
            return Err(Error::invalid(
                "epsilon_warmup_epochs",
                format!(
                    "a value in [0, epochs = {}], got {}",
                    self.epochs, self.epsilon_warmup_epochs
                ),
            ));
        }
        unit_interval_open("label_smoothing", self.label_smoothing)?;
        unit_interval_open("ema_decay", self.ema_decay)?;
        if let Some(s) = &self.synthetic {
            s.validate()?;
        }
        self.lr.validate(self.epochs)
    }
}

/// One row of `metrics.csv`: one epoch.
#[derive(Clone, Debug, Serialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Mean L2 norm of the gradient before clipping over the epoch's optimizer updates (the
    /// mean over the replays of one batch under free adversarial training).
    pub grad_norm: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}
