//! The diffusion proxy: a class-conditional DDPM (Ho et al. 2020) with classifier-free guidance
//! (Ho & Salimans 2021), trained on the same real split the classifier sees and sampled into a
//! proxy set, as the paper's best proxies are (Section 3.2, Table 4).
//!
//! Training minimises `E ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t, y)‖²` over uniform t, Gaussian ε
//! and images scaled to [−1, 1], with the label replaced by the null class with probability
//! `unconditional_probability`. Sampling runs the reverse process from pure noise, by DDPM's
//! ancestral steps (x_{t−1} = μ_θ(x_t) + √β̃_t z) or by DDIM over a subsequence of `sampling_steps`
//! steps, with the guided prediction `ε̃ = (1 + w) ε_θ(x, t, y) − w ε_θ(x, t, ∅)`.
//!
//! Every sample draws its noise from its own generator, seeded by (seed, index), so a set is
//! the same whatever the batch size it was sampled in.

pub mod schedule;
#[cfg(feature = "torch")]
mod unet;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{self, Device, Validate};
use crate::data::DatasetSource;
use crate::error::{Error, Result};
use crate::train::adam::AdamConfig;
use schedule::BetaSchedule;

/// `experiments/*_ddpm.toml`: the model, its training and where its run folder is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusionConfig {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_dataset")]
    pub dataset: DatasetSource,
    /// The classifier's split: the first N training images (0: all).
    #[serde(default)]
    pub train_subset: usize,
    /// Optimiser steps.
    pub steps: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Base channel count of the U-Net (`width`, `2·width`, `2·width` at the three resolutions).
    #[serde(default = "default_width")]
    pub width: usize,
    /// Diffusion steps T.
    #[serde(default = "default_timesteps")]
    pub timesteps: usize,
    #[serde(default)]
    pub schedule: BetaSchedule,
    /// Probability of training a sample with the null class (classifier-free guidance).
    #[serde(default = "default_unconditional")]
    pub unconditional_probability: f64,
    /// Decay of the weights' moving average used for sampling (0: the trained weights).
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    /// Checkpoint (and a row of `metrics.csv`) every this many steps.
    #[serde(default = "default_checkpoint")]
    pub checkpoint_every_steps: usize,
    #[serde(default)]
    pub device: Device,
    /// CPU threads for libtorch (0: libtorch's default).
    #[serde(default)]
    pub threads: usize,
    #[serde(default)]
    pub optimizer: AdamConfig,
}

fn default_dataset() -> DatasetSource {
    DatasetSource::Mnist10k
}
fn default_batch() -> usize {
    64
}
fn default_lr() -> f64 {
    2e-4
}
fn default_width() -> usize {
    32
}
fn default_timesteps() -> usize {
    1000
}
fn default_unconditional() -> f64 {
    0.1
}
fn default_ema() -> f64 {
    0.999
}
fn default_checkpoint() -> usize {
    500
}

impl Validate for DiffusionConfig {
    fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                "a non-empty name without path separators",
            ));
        }
        config::at_least("steps", self.steps, 1)?;
        config::at_least("batch_size", self.batch_size, 1)?;
        config::positive_finite("lr", self.lr)?;
        config::at_least("width", self.width, 4)?;
        if !self.width.is_multiple_of(2) {
            return Err(Error::invalid(
                "width",
                format!("an even channel count, got {}", self.width),
            ));
        }
        schedule::NoiseSchedule::new(self.schedule, self.timesteps)?;
        config::unit_interval("unconditional_probability", self.unconditional_probability)?;
        config::unit_interval_open("ema_decay", self.ema_decay)?;
        config::at_least("checkpoint_every_steps", self.checkpoint_every_steps, 1)?;
        self.optimizer.validate("optimizer")
    }
}

/// How the reverse process is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Ancestral sampling over all T steps.
    Ddpm,
    /// DDIM over `sampling_steps` evenly spaced steps, stochasticity `eta` (0: deterministic).
    Ddim,
}

/// The `diffusion sample` command's settings.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct SampleSettings {
    /// Samples to write.
    #[arg(long)]
    pub count: usize,
    /// Output npz (`image` uint8 N×H×W×C, `label` int64 N).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "ddim")]
    pub sampler: Sampler,
    /// DDIM steps (DDPM always runs all T).
    #[arg(long, default_value_t = 50)]
    pub sampling_steps: usize,
    /// DDIM's η (0: deterministic given the initial noise; 1: DDPM-like).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// Guidance weight w (0: the conditional model alone).
    #[arg(long, default_value_t = 1.0)]
    pub guidance: f64,
    /// Images per batch of the reverse process.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SampleSettings {
    /// Range checks; errors name the flag.
    pub fn validate(&self, timesteps: usize) -> Result<()> {
        config::at_least("--count", self.count, 1)?;
        config::at_least("--batch", self.batch, 1)?;
        config::non_negative_finite("--guidance", self.guidance)?;
        config::unit_interval("--eta", self.eta)?;
        if self.sampler == Sampler::Ddim && !(1..=timesteps).contains(&self.sampling_steps) {
            return Err(Error::invalid(
                "--sampling-steps",
                format!(
                    "between 1 and timesteps = {timesteps}, got {}",
                    self.sampling_steps
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "torch")]
mod with_torch;
#[cfg(feature = "torch")]
pub use with_torch::{Diffusion, SampleOutcome, TrainedDiffusion, sample, train};
