//! Generative proxies trained in the toolkit on the same real split the classifier sees, then
//! sampled into labelled proxy sets — the kind of proxy the paper studies (Section 3.2, Tables
//! 1 and 4): a class-conditional diffusion model ([`DdpmConfig`], `ddpm`) and a
//! class-conditional GAN ([`GanConfig`], `gan`), so the two can be compared as the paper compares
//! DDPM and StyleGAN.
//!
//! One config ([`GeneratorConfig`]) holds what every generator shares — data, steps, batch,
//! device, checkpoints — and the model in `[model]`, tagged by `kind`. Training writes a run
//! folder like the classifier trainer's (`metrics.csv`, `checkpoint.safetensors` for exact
//! resume, `weights.safetensors`, `manifest.json`, a progress bar); sampling writes any number of
//! labelled images to npz batch by batch. Every sample draws its noise from its own generator,
//! seeded by (seed, index), so a set is the same whatever the batch size it was sampled in.

pub mod schedule;

#[cfg(feature = "torch")]
mod ddpm;
#[cfg(feature = "torch")]
mod gan;
#[cfg(feature = "torch")]
mod run;
#[cfg(feature = "torch")]
pub mod spectral_norm;
#[cfg(feature = "torch")]
mod unet;

#[cfg(feature = "torch")]
pub use gan::{discriminator_loss, generator_loss, mode_seeking_loss};
#[cfg(feature = "torch")]
pub use run::{SampleOutcome, TrainedGenerator, sample, train};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{self, Device, Validate};
use crate::data::DatasetSource;
use crate::error::{Error, Result};
use crate::train::adam::AdamConfig;
use schedule::BetaSchedule;

/// `experiments/mnist_ddpm.toml`, `experiments/mnist_gan.toml`: a generator and its training.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_dataset")]
    pub dataset: DatasetSource,
    /// The classifier's split: the first N training images (0: all).
    #[serde(default)]
    pub train_subset: usize,
    /// Optimiser steps (for the GAN: discriminator and generator steps in pairs).
    pub steps: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Checkpoint (and a row of `metrics.csv`) every this many steps.
    #[serde(default = "default_checkpoint")]
    pub checkpoint_every_steps: usize,
    #[serde(default)]
    pub device: Device,
    /// CPU threads for libtorch (0: libtorch's default).
    #[serde(default)]
    pub threads: usize,
    pub model: GeneratorModel,
}

fn default_dataset() -> DatasetSource {
    DatasetSource::Mnist10k
}
fn default_batch() -> usize {
    64
}
fn default_checkpoint() -> usize {
    500
}

/// `[model]`: which generator, with its settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GeneratorModel {
    Ddpm(DdpmConfig),
    Gan(GanConfig),
}

impl GeneratorModel {
    /// The name used in file names and tables.
    pub fn name(&self) -> &'static str {
        match self {
            GeneratorModel::Ddpm(_) => "ddpm",
            GeneratorModel::Gan(_) => "gan",
        }
    }
}

/// `[model] kind = "ddpm"`: class-conditional DDPM (Ho et al. 2020) with classifier-free
/// guidance (Ho & Salimans 2021).
///
/// Training minimises `E ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t, y)‖²` over uniform t, Gaussian ε
/// and images scaled to [−1, 1], the label replaced by the null class with probability
/// `unconditional_probability`. Sampling runs the reverse process from pure noise by DDPM's
/// ancestral steps or by DDIM over a subsequence, with the guided prediction
/// `ε̃ = (1 + w) ε_θ(x, t, y) − w ε_θ(x, t, ∅)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdpmConfig {
    #[serde(default = "default_ddpm_lr")]
    pub lr: f64,
    /// Base channel count of the U-Net (`width`, `2·width`, `2·width` at its three resolutions).
    #[serde(default = "default_unet_width")]
    pub width: usize,
    /// Diffusion steps T.
    #[serde(default = "default_timesteps")]
    pub timesteps: usize,
    #[serde(default)]
    pub schedule: BetaSchedule,
    /// Probability of training a sample with the null class.
    #[serde(default = "default_unconditional")]
    pub unconditional_probability: f64,
    /// Decay of the weights' moving average that sampling uses (0: the trained weights).
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    #[serde(default)]
    pub optimizer: AdamConfig,
}

fn default_ddpm_lr() -> f64 {
    2e-4
}
fn default_unet_width() -> usize {
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

/// `[model] kind = "gan"`: a class-conditional DCGAN (Radford et al. 2016) with a projection
/// discriminator (Miyato & Koyama 2018), trained by alternating discriminator and generator
/// steps on the hinge or the non-saturating loss.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanConfig {
    #[serde(default = "default_gan_lr")]
    pub lr: f64,
    /// Dimension of the generator's latent z ~ N(0, I).
    #[serde(default = "default_latent")]
    pub latent: usize,
    /// Base channel count of both networks.
    #[serde(default = "default_gan_width")]
    pub width: usize,
    #[serde(default)]
    pub loss: GanLoss,
    /// Divide every discriminator weight by its largest singular value (Miyato et al. 2018;
    /// default on). Without it the discriminator of the laptop GAN wins within a few hundred
    /// steps (its hinge loss near 1e-7 by step 1,000 on 1,000 digits).
    #[serde(default = "yes")]
    pub spectral_norm: bool,
    /// Append the minibatch standard deviation (Karras et al. 2018: the standard deviation of
    /// every feature over the batch, averaged to one number) as an extra feature map before the
    /// discriminator's head, so a batch of near-identical fakes is easy to reject — the remedy
    /// for a generator that gives one image per class. Off by default.
    #[serde(default)]
    pub minibatch_std: bool,
    /// Weight λ of the mode-seeking term (Mao et al. 2019): the generator also minimises
    /// λ / (mean|G(z₁, y) − G(z₂, y)| / mean|z₁ − z₂| + 1e-5) over pairs of latents with the same
    /// labels, so different latents must give different images (0: off, the default).
    #[serde(default)]
    pub mode_seeking: f64,
    /// Adam's coefficients for both networks (β1 = 0.5 as in DCGAN).
    #[serde(default = "default_gan_optimizer")]
    pub optimizer: AdamConfig,
}

fn default_gan_lr() -> f64 {
    2e-4
}
fn default_latent() -> usize {
    64
}
fn default_gan_width() -> usize {
    64
}
fn default_gan_optimizer() -> AdamConfig {
    AdamConfig {
        beta1: 0.5,
        ..AdamConfig::default()
    }
}

/// The GAN objective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]; G: −E[D(G(z))].
    #[default]
    Hinge,
    /// D: E[softplus(−D(x))] + E[softplus(D(G(z)))]; G: E[softplus(−D(G(z)))] (Goodfellow et
    /// al. 2014's non-saturating generator loss).
    NonSaturating,
}

impl Validate for GeneratorConfig {
    fn validate(&self) -> Result<()> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::invalid(
                "name",
                "a non-empty name without path separators",
            ));
        }
        config::at_least("steps", self.steps, 1)?;
        config::at_least("batch_size", self.batch_size, 1)?;
        config::at_least("checkpoint_every_steps", self.checkpoint_every_steps, 1)?;
        let even = |field: &str, width: usize| {
            config::at_least(field, width, 4)?;
            config::at_most(field, width, 1024)?;
            if width.is_multiple_of(2) {
                Ok(())
            } else {
                Err(Error::invalid(
                    field,
                    format!("an even channel count, got {width}"),
                ))
            }
        };
        match &self.model {
            GeneratorModel::Ddpm(m) => {
                config::positive_finite("model.lr", m.lr)?;
                even("model.width", m.width)?;
                schedule::NoiseSchedule::new(m.schedule, m.timesteps)
                    .map_err(|e| config::in_section("model", e))?;
                config::unit_interval(
                    "model.unconditional_probability",
                    m.unconditional_probability,
                )?;
                config::unit_interval_open("model.ema_decay", m.ema_decay)?;
                m.optimizer.validate("model.optimizer")
            }
            GeneratorModel::Gan(m) => {
                config::positive_finite("model.lr", m.lr)?;
                config::at_least("model.latent", m.latent, 1)?;
                config::at_most("model.latent", m.latent, 4096)?;
                even("model.width", m.width)?;
                config::non_negative_finite("model.mode_seeking", m.mode_seeking)?;
                m.optimizer.validate("model.optimizer")
            }
        }
    }
}

/// How the diffusion model's reverse process is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Ancestral sampling over all T steps.
    Ddpm,
    /// DDIM over `sampling_steps` evenly spaced steps, stochasticity `eta` (0: deterministic).
    Ddim,
}

/// The `generator sample` command's settings (the sampler's only concern the diffusion model).
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct SampleSettings {
    /// Samples to write.
    #[arg(long)]
    pub count: usize,
    /// Output npz (`image` uint8 N×H×W×C, `label` int64 N).
    #[arg(long)]
    pub out: PathBuf,
    /// Images generated per batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Diffusion: the reverse process.
    #[arg(long, value_enum, default_value = "ddim")]
    pub sampler: Sampler,
    /// Diffusion: DDIM steps (DDPM always runs all T).
    #[arg(long, default_value_t = 50)]
    pub sampling_steps: usize,
    /// Diffusion: DDIM's η (0: deterministic given the initial noise; 1: DDPM-like).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// Diffusion: guidance weight w (0: the conditional model alone).
    #[arg(long, default_value_t = 1.0)]
    pub guidance: f64,
}

impl SampleSettings {
    /// Range checks; errors name the flag.
    pub fn validate(&self, model: &GeneratorModel) -> Result<()> {
        config::at_least("--count", self.count, 1)?;
        config::at_least("--batch", self.batch, 1)?;
        config::non_negative_finite("--guidance", self.guidance)?;
        config::unit_interval("--eta", self.eta)?;
        if let GeneratorModel::Ddpm(m) = model
            && self.sampler == Sampler::Ddim
            && !(1..=m.timesteps).contains(&self.sampling_steps)
        {
            return Err(Error::invalid(
                "--sampling-steps",
                format!(
                    "between 1 and timesteps = {}, got {}",
                    m.timesteps, self.sampling_steps
                ),
            ));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
