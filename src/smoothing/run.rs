//! The `certify` and `predict` commands: the smoothed classifier of a trained model on the test
//! split of its config, one image at a time, with locuslab/smoothing's per-image table.
//!
//! Outputs under the output folder: `samples.csv` (`idx,label,predict,radius,correct,time`:
//! test index, true label, the smoothed prediction or −1 for an abstention, the certified ℓ2
//! radius (0 when abstaining; empty for `predict`), 1 when the prediction is the label, seconds
//! spent), `summary.json` (settings and the certified accuracy at each `--radii`), for `certify`
//! also `curve.csv` (`radius,certified_accuracy`) and `certified_accuracy.{png,svg}` (Figure 2),
//! and `manifest.json`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::Tensor;
use tch::nn::ModuleT;

use super::{Certificate, CertifiedPoint, Smooth, SmoothingSettings, certified_accuracy};
use crate::error::{Error, Result};
use crate::report::{self, Axes, Labels, Series, plot};
use crate::train::TrainConfig;

/// CERTIFY (a radius per image) or PREDICT (a class or an abstention per image).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Certify,
    Predict,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Certify => "certify",
            Mode::Predict => "predict",
        }
    }
}

/// Flags of `certify` and `predict`.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct CertifyFlags {
    /// safetensors weights (default: runs/<name>/weights.safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Noise level σ in [0, 1] pixel units.
    #[arg(long, allow_negative_numbers = true)]
    pub sigma: f64,
    /// Selection samples (CERTIFY).
    #[arg(long, default_value_t = 100)]
    pub n0: usize,
    /// Estimation samples (the paper: 10,000; locuslab/smoothing: 100,000).
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Failure probability.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Noisy images per forward pass (default: min(1000, max(n0, n))).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Every K-th test image (locuslab's --skip).
    #[arg(long, default_value_t = 1)]
    pub skip: usize,
    /// At most L images (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Radii of the summary's certified accuracies (default: 0, 0.25, 110/255, 0.5, 0.75, 1, 1.5, 2).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub radii: Option<Vec<f64>>,
    /// Seed of the noise; image `idx` is certified with seed + idx, so any subset reproduces.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (default: runs/<name>/<certify|predict>-sigma<σ>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (`I/N`, I from 0): every N-th chosen image from the I-th, written
    /// to OUT/shards/shard-I-of-N.csv. Each image's noise is seeded by its index, so the shards
    /// together give exactly the rows of one run; `--merge-shards N` writes its outputs.
    #[arg(long, conflicts_with = "merge_shards")]
    pub shard: Option<String>,
    /// Write the outputs of a run from its N shard files (refused while any is missing).
    #[arg(long)]
    pub merge_shards: Option<usize>,
}

/// Table 5's ℓ2 radius, 110/255 (2/255 in ℓ∞ on CIFAR-10's 3,072 pixels).
pub const TABLE5_RADIUS: f64 = 110.0 / 255.0;

impl CertifyFlags {
    /// The Monte-Carlo settings the flags ask for (validated).
    pub fn settings(&self) -> Result<SmoothingSettings> {
        let settings = SmoothingSettings {
            sigma: self.sigma,
            n0: self.n0,
            n: self.n,
            alpha: self.alpha,
            batch: self.batch.unwrap_or(1_000.min(self.n.max(self.n0))),
        };
        settings.validate().map_err(crate::config::as_flag)?;
        if self.skip == 0 {
            return Err(Error::invalid("--skip", "at least 1"));
        }
        self.shard()?;
        if self.merge_shards == Some(0) {
            return Err(Error::invalid("--merge-shards", "at least 1 shard"));
        }
        if let Some(r) = self.radii().iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            return Err(Error::invalid(
                "--radii",
                format!("finite radii ≥ 0, got {r}"),
            ));
        }
        Ok(settings)
    }

    /// `--shard I/N` as (I, N).
    fn shard(&self) -> Result<Option<(usize, usize)>> {
        self.shard
            .as_deref()
            .map(|text| crate::config::parse_shard("--shard", text))
            .transpose()
    }

    fn radii(&self) -> Vec<f64> {
        self.radii
            .clone()
            .unwrap_or_else(|| vec![0.0, 0.25, TABLE5_RADIUS, 0.5, 0.75, 1.0, 1.5, 2.0])
    }
}

/// One row of `samples.csv`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SampleRow {
    pub idx: usize,
    pub label: i64,
    /// The smoothed prediction, −1 for an abstention.
    pub predict: i64,
    /// Certified ℓ2 radius (0 when abstaining); absent for PREDICT.
    pub radius: Option<f64>,
    pub correct: u8,
    /// Seconds spent on this image.
    pub time: f64,
}

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct CertifySummary {
    pub mode: Mode,
    pub settings: SmoothingSettings,
    pub images: usize,
    pub abstained: usize,
    /// Fraction of images the smoothed classifier gets right (certified accuracy at radius 0).
    pub accuracy: f64,
    /// Certified accuracy at each summary radius (CERTIFY only).
    pub certified: Vec<CertifiedPoint>,
    pub seconds_per_image: f64,
}

impl std::fmt::Display for CertifySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: σ = {}, n = {}, α = {}: smoothed accuracy {:.4} on {} images ({} abstained), {:.3} s per image",
            self.mode.name(),
            self.settings.sigma,
            self.settings.n,
            self.settings.alpha,
            self.accuracy,
            self.images,
            self.abstained,
            self.seconds_per_image
        )?;
        for p in &self.certified {
            writeln!(
                f,
                "certified accuracy {:.4} at ℓ2 radius {:.4}",
                p.certified_accuracy, p.radius
            )?;
        }
        Ok(())
    }
}

/// What the command produced.
pub struct CertifyOutcome {
    pub summary: CertifySummary,
    pub out: PathBuf,
}

/// `certify` / `predict`: loads the model of `config` with its weights, runs the smoothed
/// classifier over the chosen test images and writes the outputs described in the module doc.
pub fn run(
    config: &TrainConfig,
    flags: &CertifyFlags,
    mode: Mode,
    show: bool,
) -> Result<CertifyOutcome> {
    let settings = flags.settings()?;
    let weights = flags
        .weights
        .clone()
        .unwrap_or_else(|| crate::train::classifier::default_weights(config));
    let device = report::device_name(config.device.start(config.threads)?);
    let mut manifest = report::Manifest::new(mode.name(), config, device)?
        .seed(flags.seed)?
        .with("weights", &weights)?
        .with("flags", flags)?;
    // Certification counts noisy predictions of the base classifier in fp32, whatever precision
    // it was trained in.
    let fp32 = crate::train::TrainConfig {
        precision: crate::train::precision::Precision::Fp32,
        ..config.clone()
    };
    let model = crate::train::load_classifier(&fp32, &weights)?;
    let mut indices: Vec<usize> = (0..model.test.len()).step_by(flags.skip).collect();
    if flags.limit > 0 {
        indices.truncate(flags.limit);
    }
    let smooth = Smooth {
        base: &model.net,
        classes: model.test.num_classes() as i64,
        settings,
    };
    let out = flags.out.clone().unwrap_or_else(|| {
        Path::new("runs").join(&config.name).join(format!(
            "{}-sigma{}",
            mode.name(),
            settings.sigma
        ))
    });
    let rows = match (flags.shard()?, flags.merge_shards) {
        (Some((i, n)), _) => {
            let mine: Vec<usize> = indices.iter().copied().skip(i).step_by(n).collect();
            let rows = smooth_points(&smooth, &model.x, &model.y, &mine, mode, flags.seed, show)?;
            report::write_csv(&shard_file(&out, i, n), &rows)?;
            let summary = summarise(mode, &settings, &rows, &flags.radii());
            return Ok(CertifyOutcome { summary, out });
        }
        (None, Some(n)) => {
            manifest = manifest.with("merged_shards", n)?;
            merged_shards(&out, n, &indices)?
        }
        (None, None) => smooth_points(
            &smooth, &model.x, &model.y, &indices, mode, flags.seed, show,
        )?,
    };
    let summary = summarise(mode, &settings, &rows, &flags.radii());
    report::create_run_dir(&out)?;
    report::write_csv(&out.join("samples.csv"), &rows)?;
    report::write_json(&out.join("summary.json"), &summary)?;
    let mut outputs = vec!["samples.csv", "summary.json"];
    if mode == Mode::Certify {
        write_curve(&out, &settings, &rows)?;
        outputs.extend([
            "curve.csv",
            "certified_accuracy.png",
            "certified_accuracy.svg",
        ]);
    }
    manifest.write(&out, &outputs)?;
    Ok(CertifyOutcome { summary, out })
}

/// Where shard `i` of `n` writes its rows.
fn shard_file(out: &Path, i: usize, n: usize) -> PathBuf {
    out.join("shards").join(format!("shard-{i}-of-{n}.csv"))
}

/// The rows of `n` shard files, in the order of `indices`, which they must cover exactly.
fn merged_shards(out: &Path, n: usize, indices: &[usize]) -> Result<Vec<SampleRow>> {
    let missing: Vec<String> = (0..n)
        .filter(|&i| !shard_file(out, i, n).exists())
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            "--merge-shards",
            format!(
                "all {n} shard files under {}; missing shards {}",
                out.join("shards").display(),
                missing.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    for i in 0..n {
        let file = shard_file(out, i, n);
        let mut reader = csv::Reader::from_path(&file)
            .map_err(|e| Error::file(&file, format!("not readable: {e}")))?;
        for row in reader.deserialize::<SampleRow>() {
            rows.push(
                row.map_err(|e| Error::file(&file, format!("not a samples.csv shard: {e}")))?,
            );
        }
    }
    rows.sort_by_key(|r| r.idx);
    if rows.iter().map(|r| r.idx).ne(indices.iter().copied()) {
        return Err(Error::invalid(
            "--merge-shards",
            "shards made with the flags given here (the same --skip and --limit): their images differ from the ones these flags choose",
        ));
    }
    Ok(rows)
}

/// The smoothed classifier on the test points `indices` of (`x`, `y`), image `idx` with tch seed
/// `seed + idx`, with a progress bar over images.
pub fn smooth_points<M: ModuleT + ?Sized>(
    smooth: &Smooth<'_, M>,
    x: &Tensor,
    y: &Tensor,
    indices: &[usize],
    mode: Mode,
    seed: u64,
    show: bool,
) -> Result<Vec<SampleRow>> {
    let bar = report::progress(indices.len(), mode.name(), show);
    let mut rows = Vec::with_capacity(indices.len());
    for &idx in indices {
        let clock = std::time::Instant::now();
        tch::manual_seed(seed.wrapping_add(idx as u64) as i64);
        let image = x.get(idx as i64);
        let label = y.int64_value(&[idx as i64]);
        let (predict, radius) = match mode {
            Mode::Certify => match smooth.certify(&image)? {
                Certificate::Certified { class, radius } => (class, Some(radius)),
                Certificate::Abstain => (-1, Some(0.0)),
            },
            Mode::Predict => (smooth.predict(&image)?.unwrap_or(-1), None),
        };
        rows.push(SampleRow {
            idx,
            label,
            predict,
            radius,
            correct: u8::from(predict == label),
            time: clock.elapsed().as_secs_f64(),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// `(correct, radius)` pairs of the rows, radius 0 where absent.
fn points(rows: &[SampleRow]) -> Vec<(bool, f64)> {
    rows.iter()
        .map(|r| (r.correct == 1, r.radius.unwrap_or(0.0)))
        .collect()
}

/// The summary of certified (or predicted) rows at the summary radii.
pub fn summarise(
    mode: Mode,
    settings: &SmoothingSettings,
    rows: &[SampleRow],
    radii: &[f64],
) -> CertifySummary {
    let images = rows.len();
    let correct = rows.iter().filter(|r| r.correct == 1).count();
    CertifySummary {
        mode,
        settings: *settings,
        images,
        abstained: rows.iter().filter(|r| r.predict < 0).count(),
        accuracy: if images == 0 {
            0.0
        } else {
            correct as f64 / images as f64
        },
        certified: match mode {
            Mode::Certify => certified_accuracy(&points(rows), radii),
            Mode::Predict => Vec::new(),
        },
        seconds_per_image: rows.iter().map(|r| r.time).sum::<f64>() / images.max(1) as f64,
    }
}

/// The radii of the certified-accuracy curve: 0 up to the largest radius CERTIFY can return with
/// these settings, σ·Φ⁻¹(α^(1/n)) (all n votes for the top class), in 200 steps.
pub fn curve_radii(settings: &SmoothingSettings) -> Vec<f64> {
    let top = super::clopper_pearson_lower(settings.n as u64, settings.n as u64, settings.alpha)
        .ok()
        .and_then(|p| super::certified_radius(settings.sigma, p))
        .unwrap_or(settings.sigma);
    (0..=200).map(|i| top * i as f64 / 200.0).collect()
}

/// `curve.csv` and `certified_accuracy.{png,svg}`.
fn write_curve(out: &Path, settings: &SmoothingSettings, rows: &[SampleRow]) -> Result<()> {
    let curve = certified_accuracy(&points(rows), &curve_radii(settings));
    report::write_csv(&out.join("curve.csv"), &curve)?;
    let xy: Vec<(f64, f64)> = curve
        .iter()
        .map(|p| (p.radius, p.certified_accuracy))
        .collect();
    let name = format!("σ = {}", settings.sigma);
    plot(
        &out.join("certified_accuracy"),
        &Labels {
            title: "Certified accuracy of the smoothed classifier",
            x: "ℓ2 radius",
            y: "certified accuracy",
        },
        &[Series {
            name: &name,
            points: &xy,
            color: report::BLUE,
            line: true,
        }],
        Axes {
            log: false,
            diagonal: false,
        },
    )
}
