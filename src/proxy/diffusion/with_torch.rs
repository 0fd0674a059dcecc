//! Training and sampling of the diffusion proxy on tch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::schedule::NoiseSchedule;
use super::unet::UNet;
use super::{DiffusionConfig, SampleSettings, Sampler};
use crate::config::Validate;
use crate::data::ImageNpzWriter;
use crate::error::{Error, Result};
use crate::model::layout::{contiguous_cpu, save_weights};
use crate::report;
use crate::train::adam::Adam;
use crate::train::classifier::{load_parameters, read_safetensors, tensors};
use crate::train::run::derived_seed;

/// A U-Net with its variables, for images of `shape` (H, W, C) and `classes` classes.
pub struct Diffusion {
    pub vs: VarStore,
    pub net: UNet,
    pub schedule: NoiseSchedule,
    pub shape: [usize; 3],
    pub classes: usize,
}

impl Diffusion {
    /// The untrained model of `config` on `device`.
    pub fn new(
        config: &DiffusionConfig,
        shape: [usize; 3],
        classes: usize,
        device: Device,
    ) -> Result<Self> {
        let vs = VarStore::new(device);
        let net = UNet::new(
            &vs.root(),
            shape[2] as i64,
            classes as i64,
            config.width as i64,
        );
        Ok(Diffusion {
            vs,
            net,
            schedule: NoiseSchedule::new(config.schedule, config.timesteps)?,
            shape,
            classes,
        })
    }

    fn variables(&self) -> BTreeMap<String, Tensor> {
        self.vs.variables().into_iter().collect()
    }

    /// The guided noise prediction `(1 + w) ε(x, t, y) − w ε(x, t, ∅)` at one step `t`.
    fn guided(&self, x: &Tensor, t: usize, y: &Tensor, guidance: f64) -> Tensor {
        let n = x.size()[0];
        let steps = Tensor::full([n], t as i64, (Kind::Int64, x.device()));
        let conditional = self.net.forward(x, &steps, y);
        if guidance == 0.0 {
            return conditional;
        }
        let null = Tensor::full([n], self.net.null_class(), (Kind::Int64, x.device()));
        let unconditional = self.net.forward(x, &steps, &null);
        conditional * (1.0 + guidance) - unconditional * guidance
    }
}

/// What a finished training run reports.
#[derive(Debug, Serialize)]
pub struct TrainedDiffusion {
    pub run_dir: PathBuf,
    pub steps: usize,
    pub final_loss: f64,
    pub device: String,
}

impl std::fmt::Display for TrainedDiffusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} steps on {}: loss {:.4}\noutputs: {}",
            self.steps,
            self.device,
            self.final_loss,
            self.run_dir.display()
        )
    }
}

/// One row of the diffusion run's `metrics.csv`.
#[derive(Debug, Serialize)]
struct StepMetrics {
    step: usize,
    loss: f64,
    seconds: f64,
}

/// Trains `config` into `run_dir` (`metrics.csv`, `checkpoint.safetensors`,
/// `weights.safetensors` — the moving average when `ema_decay` > 0 — and `manifest.json`);
/// with `resume`, continues from the checkpoint.
pub fn train(
    config: &DiffusionConfig,
    run_dir: &Path,
    show_progress: bool,
    resume: bool,
) -> Result<TrainedDiffusion> {
    config.validate()?;
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let device = config.device.resolve()?;
    let mut manifest =
        report::Manifest::new("diffusion train", config, report::device_name(device))?
            .seed(config.seed)?
            .with("resumed", resume)?;
    let (train, _) = config.dataset.load()?;
    let train = train.subset(config.train_subset);
    tch::manual_seed(config.seed as i64);
    let model = Diffusion::new(config, train.shape(), train.num_classes(), device)?;
    let average = Diffusion::new(config, train.shape(), train.num_classes(), device)?;
    let parameters = model.variables();
    let averaged = average.variables();
    tch::no_grad(|| {
        for (name, v) in &averaged {
            v.shallow_clone().copy_(&parameters[name]);
        }
    });
    let mut adam = Adam::new(config.optimizer.clone());
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let (mut step, mut rows) = (0usize, Vec::new());
    if resume {
        step = restore(&checkpoint, &parameters, &averaged, &mut adam, device)?;
        rows = read_metrics(&run_dir.join("metrics.csv"), step);
    }
    report::create_run_dir(run_dir)?;
    let (x, y) = tensors(&train, device);
    let x = x * 2.0 - 1.0;
    let alpha_bars = Tensor::from_slice(&model.schedule.alpha_bars)
        .to_kind(Kind::Float)
        .to_device(device);
    let bar = report::progress(config.steps, "diffusion", show_progress);
    bar.set_position(step as u64);
    let (mut interval_loss, mut interval_steps, mut started) = (0.0, 0, std::time::Instant::now());
    let n = train.len() as i64;
    while step < config.steps {
        tch::manual_seed(derived_seed(config.seed, 0, step as i64));
        let batch = config.batch_size as i64;
        let index = Tensor::randint(n, [batch], (Kind::Int64, device));
        let x0 = x.index_select(0, &index);
        let drop =
            Tensor::rand([batch], (Kind::Float, device)).lt(config.unconditional_probability);
        let labels = y
            .index_select(0, &index)
            .masked_fill(&drop, model.net.null_class());
        let t = Tensor::randint(config.timesteps as i64, [batch], (Kind::Int64, device));
        let noise = x0.randn_like();
        let ab = alpha_bars.index_select(0, &t).view([batch, 1, 1, 1]);
        let xt = &ab.sqrt() * &x0 + (ab.ones_like() - &ab).sqrt() * &noise;
        let loss = model
            .net
            .forward(&xt, &t, &labels)
            .mse_loss(&noise, tch::Reduction::Mean);
        loss.backward();
        adam.step(&parameters, config.lr);
        tch::no_grad(|| {
            for (name, v) in &averaged {
                let _ = v
                    .shallow_clone()
                    .lerp_(&parameters[name], 1.0 - config.ema_decay);
            }
        });
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(Error::invalid(
                "lr",
                format!("a rate that keeps the loss finite; step {step} gave {value}"),
            ));
        }
        interval_loss += value;
        interval_steps += 1;
        step += 1;
        bar.set_message(format!("loss {value:.4}"));
        bar.inc(1);
        if step % config.checkpoint_every_steps == 0 || step == config.steps {
            rows.push(StepMetrics {
                step,
                loss: interval_loss / interval_steps as f64,
                seconds: started.elapsed().as_secs_f64(),
            });
            (interval_loss, interval_steps, started) = (0.0, 0, std::time::Instant::now());
            report::write_csv(&run_dir.join("metrics.csv"), &rows)?;
            save(&checkpoint, &parameters, &averaged, &adam, step)?;
        }
    }
    bar.finish_and_clear();
    let sampled = if config.ema_decay > 0.0 {
        &average.vs
    } else {
        &model.vs
    };
    report::atomic_write_path(&run_dir.join("weights.safetensors"), |tmp| {
        save_weights(sampled, tmp).map_err(|e| e.to_string())
    })?;
    manifest.write(
        run_dir,
        &[
            "metrics.csv",
            "checkpoint.safetensors",
            "weights.safetensors",
        ],
    )?;
    Ok(TrainedDiffusion {
        run_dir: run_dir.to_owned(),
        steps: step,
        final_loss: rows.last().map_or(f64::NAN, |r| r.loss),
        device: manifest.device,
    })
}

fn save(
    path: &Path,
    parameters: &BTreeMap<String, Tensor>,
    averaged: &BTreeMap<String, Tensor>,
    adam: &Adam,
    step: usize,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (prefix, variables) in [("model/", parameters), ("ema/", averaged)] {
        for (name, v) in variables {
            named.push((format!("{prefix}{name}"), contiguous_cpu(v)));
        }
    }
    named.extend(adam.checkpoint_entries("adam/"));
    named.push(("state/step".into(), Tensor::from_slice(&[step as f64])));
    report::atomic_write_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| e.to_string())
    })
}

fn restore(
    path: &Path,
    parameters: &BTreeMap<String, Tensor>,
    averaged: &BTreeMap<String, Tensor>,
    adam: &mut Adam,
    device: Device,
) -> Result<usize> {
    if !path.exists() {
        return Err(Error::file(
            path,
            "no checkpoint to resume from (run without --resume first)",
        ));
    }
    let tensors = read_safetensors(path)?;
    load_parameters(path, &tensors, parameters, "model/")?;
    load_parameters(path, &tensors, averaged, "ema/")?;
    let step = tensors
        .get("state/step")
        .map(|t| t.double_value(&[0]) as usize);
    match (step, adam.restore(&tensors, "adam/", device)) {
        (Some(step), Some(())) => Ok(step),
        _ => Err(Error::file(
            path,
            "missing `state/step` or `adam/steps`: not a checkpoint of a diffusion model",
        )),
    }
}

/// The rows of `metrics.csv` up to `step` (what a resumed run continues).
fn read_metrics(path: &Path, step: usize) -> Vec<StepMetrics> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    reader
        .records()
        .filter_map(|r| r.ok())
        .filter_map(|r| {
            Some(StepMetrics {
                step: r.get(0)?.parse().ok()?,
                loss: r.get(1)?.parse().ok()?,
                seconds: r.get(2)?.parse().ok()?,
            })
        })
        .filter(|r| r.step <= step)
        .collect()
}

/// What `diffusion sample` wrote.
#[derive(Debug, Serialize)]
pub struct SampleOutcome {
    pub written: usize,
    pub out: PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for SampleOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} diffusion samples in {:.1} s -> {}",
            self.written,
            self.seconds,
            self.out.display()
        )
    }
}

/// Samples `settings.count` labelled images from the trained `weights` of `config` (labels in
/// the proportions of the training split, shuffled by the seed) and writes them batch by batch.
pub fn sample(
    config: &DiffusionConfig,
    weights: &Path,
    settings: &SampleSettings,
    show_progress: bool,
) -> Result<SampleOutcome> {
    config.validate()?;
    settings.validate(config.timesteps)?;
    let started = std::time::Instant::now();
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let device = config.device.resolve()?;
    let (train, _) = config.dataset.load()?;
    let train = train.subset(config.train_subset);
    let model = Diffusion::new(config, train.shape(), train.num_classes(), device)?;
    load_parameters(weights, &read_safetensors(weights)?, &model.variables(), "")?;
    let labels = sample_labels(&train, settings.count, settings.seed);
    let mut writer = ImageNpzWriter::create(&settings.out, settings.count, model.shape)?;
    let bar = report::progress(settings.count, "sampling", show_progress);
    for start in (0..settings.count).step_by(settings.batch) {
        let end = (start + settings.batch).min(settings.count);
        let images =
            tch::no_grad(|| reverse_process(&model, &labels[start..end], start, settings))?;
        writer.append(&images)?;
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    writer.finish(&labels)?;
    Ok(SampleOutcome {
        written: settings.count,
        out: settings.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `count` labels in the proportions of `train`'s classes, in an order shuffled by `seed`.
fn sample_labels(train: &crate::data::ImageDataset, count: usize, seed: u64) -> Vec<i64> {
    use rand::seq::SliceRandom;
    let mut labels: Vec<i64> = crate::proxy::class_counts(train, count)
        .into_iter()
        .enumerate()
        .flat_map(|(class, n)| std::iter::repeat_n(class as i64, n))
        .collect();
    labels.shuffle(&mut StdRng::seed_from_u64(seed));
    labels
}

/// Per-sample noise: sample `first + i` of a set draws from its own generator.
struct SampleNoise {
    generators: Vec<StdRng>,
    per_image: usize,
}

impl SampleNoise {
    fn new(seed: u64, first: usize, count: usize, per_image: usize) -> Self {
        SampleNoise {
            generators: (first..first + count)
                .map(|i| StdRng::seed_from_u64(derived_seed(seed, i, -2) as u64))
                .collect(),
            per_image,
        }
    }

    /// One standard normal draw per pixel of every sample, shaped like `like`.
    fn draw(&mut self, like: &Tensor) -> Tensor {
        let values: Vec<f32> = self
            .generators
            .iter_mut()
            .flat_map(|g| {
                (0..self.per_image)
                    .map(|_| StandardNormal.sample(g))
                    .collect::<Vec<f32>>()
            })
            .collect();
        Tensor::from_slice(&values)
            .view(like.size().as_slice())
            .to_device(like.device())
    }
}

/// Runs the reverse process for a batch with `labels`, the batch's first sample being sample
/// `first` of the set; returns uint8 pixels, NHWC.
fn reverse_process(
    model: &Diffusion,
    labels: &[i64],
    first: usize,
    settings: &SampleSettings,
) -> Result<Vec<u8>> {
    let [h, w, c] = model.shape.map(|v| v as i64);
    let n = labels.len() as i64;
    let device = model.vs.device();
    let y = Tensor::from_slice(labels).to_device(device);
    let like = Tensor::zeros([n, c, h, w], (Kind::Float, device));
    let mut noise = SampleNoise::new(settings.seed, first, labels.len(), (c * h * w) as usize);
    let mut x = noise.draw(&like);
    let s = &model.schedule;
    match settings.sampler {
        Sampler::Ddpm => {
            for t in (0..s.len()).rev() {
                let eps = model.guided(&x, t, &y, settings.guidance);
                let x0 = predicted_data(s, &x, &eps, t);
                let (c0, ct) = s.posterior_mean_coefficients(t);
                x = x0 * c0 + &x * ct;
                if t > 0 {
                    x += noise.draw(&like) * s.posterior_variance(t).sqrt();
                }
            }
        }
        Sampler::Ddim => {
            let steps = s.subsequence(settings.sampling_steps)?;
            for (i, &t) in steps.iter().enumerate() {
                let eps = model.guided(&x, t, &y, settings.guidance);
                let x0 = predicted_data(s, &x, &eps, t);
                let (data, direction, sigma) =
                    s.ddim_coefficients(t, steps.get(i + 1).copied(), settings.eta);
                x = x0 * data + &eps * direction;
                if sigma > 0.0 {
                    x += noise.draw(&like) * sigma;
                }
            }
        }
    }
    let pixels = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_device(Device::Cpu);
    Vec::<u8>::try_from(pixels.flatten(0, -1)).map_err(|e| Error::invalid("samples", e.to_string()))
}

/// x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t, clipped to the data range [−1, 1].
fn predicted_data(s: &NoiseSchedule, x: &Tensor, eps: &Tensor, t: usize) -> Tensor {
    let alpha_bar = s.alpha_bars[t];
    ((x - eps * (1.0 - alpha_bar).sqrt()) / alpha_bar.sqrt()).clamp(-1.0, 1.0)
}
