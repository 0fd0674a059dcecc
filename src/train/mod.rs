//! Training: configs and learning-rate schedules (always built), the natural-training loop on
//! tch (feature `torch`). Adversarial objectives and PORT build on this loop (issues 5 and 6).

#[cfg(feature = "torch")]
mod ema;
pub mod objective;
pub mod port;
pub mod schedule;
#[cfg(feature = "torch")]
mod sgd;

#[cfg(feature = "torch")]
pub use sgd::Sgd;

#[cfg(feature = "torch")]
pub(crate) mod run;

#[cfg(feature = "torch")]
pub use run::{TrainOutcome, load_classifier, run};

use serde::{Deserialize, Serialize};

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
    #[serde(default = "default_device")]
    pub device: String,
    /// CPU threads for libtorch (0: libtorch's default).
    #[serde(default)]
    pub threads: usize,
    /// Also checkpoint every this many steps inside an epoch (0: at epoch ends only).
    #[serde(default)]
    pub checkpoint_every_steps: usize,
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
fn default_device() -> String {
    "auto".into()
}

/// `[optimizer]`: SGD with momentum, Nesterov and weight decay (Appendix B: 0.9, 5e-4).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
        }
    }
}

impl TrainConfig {
    /// Reads and validates a config file; errors name the file, line and field.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read config: {e}")))?;
        let config: TrainConfig = crate::sweep::parse_toml(path, &text)?;
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// Range checks of every field.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                "a non-empty name without path separators",
            ));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "at least 1"));
        }
        if !["auto", "cpu", "cuda"].contains(&self.device.as_str()) {
            return Err(Error::invalid(
                "device",
                format!("auto, cpu or cuda, got \"{}\"", self.device),
            ));
        }
        let o = &self.optimizer;
        if !(0.0..1.0).contains(&o.momentum) {
            return Err(Error::invalid(
                "optimizer.momentum",
                format!("a value in [0, 1), got {}", o.momentum),
            ));
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return Err(Error::invalid(
                "optimizer.weight_decay",
                format!("a finite value ≥ 0, got {}", o.weight_decay),
            ));
        }
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
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::invalid(
                "label_smoothing",
                format!("a value in [0, 1), got {}", self.label_smoothing),
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::invalid(
                "ema_decay",
                format!("a value in [0, 1), got {}", self.ema_decay),
            ));
        }
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
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}
