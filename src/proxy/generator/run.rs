//! What every generator shares on tch: the training loop over random batches of the real split
//! with checkpoints, metrics and a manifest, and sampling to npz batch by batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::{GeneratorConfig, GeneratorModel, SampleSettings};
use crate::config::Validate;
use crate::data::{ImageDataset, ImageNpzWriter};
use crate::error::{Error, Result};
use crate::model::layout::contiguous_cpu;
use crate::report;
use crate::train::Start;
use crate::train::adam::Adam;
use crate::train::classifier::{load_parameters, read_safetensors, tensors};
use crate::train::run::derived_seed;

/// A generator being trained or sampled.
pub(super) trait Generative {
    /// One training step on real images in [−1, 1] (N, C, H, W) and their labels; returns the
    /// loss to log.
    fn step(&mut self, x: &Tensor, y: &Tensor) -> f64;
    /// The variable groups a checkpoint holds, by prefix (`model/`, `ema/`, …).
    fn variables(&self) -> Vec<(&'static str, BTreeMap<String, Tensor>)>;
    /// The optimisers, by prefix.
    fn optimizers(&self) -> Vec<(&'static str, &Adam)>;
    fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut Adam)>;
    /// The variables written as `weights.safetensors` and loaded for sampling.
    fn sampling_store(&self) -> &VarStore;
    /// Images in [−1, 1] (N, C, H, W) for labels `y`, each sample's noise from `noise`.
    fn generate(
        &self,
        y: &Tensor,
        noise: &mut SampleNoise,
        settings: &SampleSettings,
    ) -> Result<Tensor>;
}

/// The generator of `config` for images of `shape` (H, W, C) and `classes` classes.
fn build(
    config: &GeneratorConfig,
    shape: [usize; 3],
    classes: usize,
    device: Device,
) -> Result<Box<dyn Generative>> {
    Ok(match &config.model {
        GeneratorModel::Ddpm(m) => Box::new(super::ddpm::Ddpm::new(m, shape, classes, device)?),
        GeneratorModel::Gan(m) => Box::new(super::gan::Gan::new(m, shape, classes, device)),
    })
}

/// What a finished training run reports.
#[derive(Debug, Serialize)]
pub struct TrainedGenerator {
    pub run_dir: PathBuf,
    pub steps: usize,
    pub final_loss: f64,
    pub device: String,
}

impl std::fmt::Display for TrainedGenerator {
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

/// One row of a generator run's `metrics.csv`: the mean loss over the steps since the last row.
#[derive(Debug, Serialize)]
struct StepMetrics {
    step: usize,
    loss: f64,
    seconds: f64,
}

/// Trains `config` into `run_dir` (`metrics.csv`, `checkpoint.safetensors`,
/// `weights.safetensors`, `run_config.json`, `manifest.json`); [`Start::Resume`] continues from
/// the checkpoint if it was made with the same config, [`Start::Fresh`] refuses a folder holding
/// a checkpoint.
/// Step `s` draws its batch and noise from libtorch's generator seeded by (seed, s), so a
/// resumed run repeats the uninterrupted one.
pub fn train(
    config: &GeneratorConfig,
    run_dir: &Path,
    show_progress: bool,
    start: Start,
) -> Result<TrainedGenerator> {
    config.validate()?;
    let device = config.device.start(config.threads)?;
    let mut manifest =
        report::Manifest::new("generator train", config, report::device_name(device))?
            .seed(config.seed)?
            .with("start", start)?;
    let (train, _) = config.dataset.load()?;
    let train = train.subset(config.train_subset);
    tch::manual_seed(config.seed as i64);
    let mut model = build(config, train.shape(), train.num_classes(), device)?;
    let checkpoint = run_dir.join("checkpoint.safetensors");
    let (mut step, mut rows) = (0, Vec::new());
    // More steps only extend the loop (no schedule depends on the total): a resume may add them.
    let mut resumable = crate::train::checkpoint::RESUMABLE_FIELDS.to_vec();
    resumable.push("steps");
    crate::train::checkpoint::claim_run_dir(run_dir, config, start, &resumable)?;
    if start == Start::Resume {
        step = restore(&checkpoint, model.as_mut(), device)?;
        rows = read_metrics(&run_dir.join("metrics.csv"), step);
    }
    let (x, y) = tensors(&train, device);
    let x = x * 2.0 - 1.0;
    let bar = report::progress(config.steps, config.model.name(), show_progress);
    bar.set_position(step as u64);
    let (mut loss_sum, mut interval, mut started) = (0.0, 0, std::time::Instant::now());
    while step < config.steps {
        tch::manual_seed(derived_seed(config.seed, 0, step as i64));
        let index = Tensor::randint(
            train.len() as i64,
            [config.batch_size as i64],
            (Kind::Int64, device),
        );
        let loss = model.step(&x.index_select(0, &index), &y.index_select(0, &index));
        if !loss.is_finite() {
            return Err(Error::invalid(
                "model.lr",
                format!("a rate that keeps the loss finite; step {step} gave {loss}"),
            ));
        }
        (loss_sum, interval, step) = (loss_sum + loss, interval + 1, step + 1);
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        if step % config.checkpoint_every_steps == 0 || step == config.steps {
            rows.push(StepMetrics {
                step,
                loss: loss_sum / interval as f64,
                seconds: started.elapsed().as_secs_f64(),
            });
            (loss_sum, interval, started) = (0.0, 0, std::time::Instant::now());
            save(&checkpoint, model.as_ref(), step)?;
            report::write_csv(&run_dir.join("metrics.csv"), &rows)?;
        }
    }
    bar.finish_and_clear();
    crate::train::checkpoint::finish_run(run_dir, model.sampling_store(), &mut manifest)?;
    Ok(TrainedGenerator {
        run_dir: run_dir.to_owned(),
        steps: step,
        final_loss: rows.last().map_or(f64::NAN, |r| r.loss),
        device: manifest.device,
    })
}

fn save(path: &Path, model: &dyn Generative, step: usize) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (prefix, variables) in model.variables() {
        for (name, v) in variables {
            named.push((format!("{prefix}{name}"), contiguous_cpu(&v)));
        }
    }
    for (prefix, adam) in model.optimizers() {
        named.extend(adam.checkpoint_entries(prefix));
    }
    named.push(("state/step".into(), Tensor::from_slice(&[step as f64])));
    report::atomic_write_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| e.to_string())
    })
}

fn restore(path: &Path, model: &mut dyn Generative, device: Device) -> Result<usize> {
    if !path.exists() {
        return Err(Error::file(
            path,
            "no checkpoint to resume from (run without --resume first)",
        ));
    }
    let tensors = read_safetensors(path)?;
    for (prefix, variables) in model.variables() {
        load_parameters(path, &tensors, &variables, prefix)?;
    }
    let missing = || {
        Error::file(
            path,
            "missing optimiser state: not a checkpoint of this generator",
        )
    };
    for (prefix, adam) in model.optimizers_mut() {
        adam.restore(&tensors, prefix, device).ok_or_else(missing)?;
    }
    tensors
        .get("state/step")
        .map(|t| t.double_value(&[0]) as usize)
        .ok_or_else(missing)
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

/// What `generator sample` wrote.
#[derive(Debug, Serialize)]
pub struct SampleOutcome {
    pub generator: &'static str,
    pub written: usize,
    pub out: PathBuf,
    pub seconds: f64,
}

impl std::fmt::Display for SampleOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} samples in {:.1} s -> {}",
            self.written,
            self.generator,
            self.seconds,
            self.out.display()
        )
    }
}

/// Samples `settings.count` labelled images from the trained `weights` of `config` — labels in
/// the proportions of the training split, in an order shuffled by the seed — and writes them to
/// `settings.out` batch by batch.
pub fn sample(
    config: &GeneratorConfig,
    weights: &Path,
    settings: &SampleSettings,
    show_progress: bool,
) -> Result<SampleOutcome> {
    config.validate()?;
    settings.validate(&config.model)?;
    let started = std::time::Instant::now();
    let device = config.device.start(config.threads)?;
    let (train, _) = config.dataset.load()?;
    let train = train.subset(config.train_subset);
    let model = build(config, train.shape(), train.num_classes(), device)?;
    let variables: BTreeMap<String, Tensor> =
        model.sampling_store().variables().into_iter().collect();
    load_parameters(weights, &read_safetensors(weights)?, &variables, "")?;
    let labels = sample_labels(&train, settings.count, settings.seed);
    let mut writer = ImageNpzWriter::create(&settings.out, settings.count, train.shape())?;
    let bar = report::progress(settings.count, "sampling", show_progress);
    let per_image = train.shape().iter().product();
    for start in (0..settings.count).step_by(settings.batch) {
        let end = (start + settings.batch).min(settings.count);
        let mut noise = SampleNoise::new(settings.seed, start..end, per_image);
        let y = Tensor::from_slice(&labels[start..end]).to_device(device);
        let images = tch::no_grad(|| model.generate(&y, &mut noise, settings))?;
        writer.append(&to_pixels(&images)?)?;
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    writer.finish(&labels)?;
    Ok(SampleOutcome {
        generator: config.model.name(),
        written: settings.count,
        out: settings.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `count` labels in the proportions of `train`'s classes, in an order shuffled by `seed`.
fn sample_labels(train: &ImageDataset, count: usize, seed: u64) -> Vec<i64> {
    use rand::seq::SliceRandom;
    let mut labels: Vec<i64> = crate::proxy::class_counts(train, count)
        .into_iter()
        .enumerate()
        .flat_map(|(class, n)| std::iter::repeat_n(class as i64, n))
        .collect();
    labels.shuffle(&mut StdRng::seed_from_u64(seed));
    labels
}

/// Images in [−1, 1] (N, C, H, W) as uint8 pixels, NHWC.
fn to_pixels(images: &Tensor) -> Result<Vec<u8>> {
    let pixels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous()
        .to_device(Device::Cpu);
    Vec::<u8>::try_from(pixels.flatten(0, -1)).map_err(|e| Error::invalid("samples", e.to_string()))
}

/// Per-sample noise: sample `i` of a set draws from its own generator, seeded by (seed, i).
pub(super) struct SampleNoise {
    generators: Vec<StdRng>,
    per_image: usize,
}

impl SampleNoise {
    fn new(seed: u64, samples: std::ops::Range<usize>, per_image: usize) -> Self {
        SampleNoise {
            generators: samples
                .map(|i| StdRng::seed_from_u64(derived_seed(seed, i, -2) as u64))
                .collect(),
            per_image,
        }
    }

    /// One standard normal image per sample, (N, C, H, W) like `like`.
    pub(super) fn images(&mut self, like: &Tensor) -> Tensor {
        self.draw(self.per_image, like.size().as_slice(), like.device())
    }

    /// `per_sample` standard normal draws per sample, shaped `shape` (N first) on `device`.
    pub(super) fn draw(&mut self, per_sample: usize, shape: &[i64], device: Device) -> Tensor {
        let values: Vec<f32> = self
            .generators
            .iter_mut()
            .flat_map(|g| {
                (0..per_sample)
                    .map(|_| StandardNormal.sample(g))
                    .collect::<Vec<f32>>()
            })
            .collect();
        Tensor::from_slice(&values).view(shape).to_device(device)
    }
}
