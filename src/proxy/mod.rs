//! Proxy distributions for the embedded default (paper Section 2.3's D̃, made without a
//! download): generators fitted on the real training split that sample any number of labelled
//! images, from good to poor proxies on purpose, one file per generator:
//! a class-conditional Gaussian with full covariance ([`gaussian`]), PCA followed by a
//! per-class diagonal Gaussian mixture ([`pca_mixture`]), and interpolation between nearest
//! neighbours of the same class ([`interpolation`]). Every generator keeps the real label
//! distribution (Theorem 1 compares distributions with the same class probabilities), so class
//! y receives round(count · p_y) samples.

pub mod gaussian;
pub mod generator;
pub mod interpolation;
pub mod pca_mixture;
#[cfg(feature = "torch")]
pub mod quality;
pub mod ranking;

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::ImageDataset;
use crate::error::{Error, Result};

/// Which generator, with its settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProxyKind {
    /// N(μ_y, Σ_y) per class, Σ_y the full sample covariance.
    Gaussian,
    /// PCA to `dimensions` components, then per class a mixture of `components` diagonal
    /// Gaussians fitted by EM.
    PcaMixture {
        dimensions: usize,
        components: usize,
    },
    /// λ·x_i + (1 − λ)·x_j, x_j one of the `neighbours` nearest same-class images of x_i,
    /// λ ~ U(0, 1).
    Interpolation { neighbours: usize },
    /// Real images the classifier's split does not contain (extra real data, as in Carmon et
    /// al. 2019): the ceiling any proxy can reach, and the check that PORT itself works.
    Oracle,
}

impl ProxyKind {
    /// The name used in file names and tables.
    pub fn name(&self) -> &'static str {
        match self {
            ProxyKind::Gaussian => "gaussian",
            ProxyKind::PcaMixture { .. } => "pca-mixture",
            ProxyKind::Interpolation { .. } => "interpolation",
            ProxyKind::Oracle => "oracle",
        }
    }
}

/// The images of class `class` as the rows of an n × d matrix with values in [0, 1].
pub fn class_rows(data: &ImageDataset, class: i64) -> Mat<f64> {
    let d: usize = data.shape().iter().product();
    let members: Vec<usize> = (0..data.len())
        .filter(|&i| data.labels()[i] == class)
        .collect();
    Mat::from_fn(members.len(), d, |r, c| {
        data.pixels()[members[r] * d + c] as f64 / 255.0
    })
}

/// How many samples each class gets: round(count · p_y), adjusted so they sum to `count`.
pub fn class_counts(data: &ImageDataset, count: usize) -> Vec<usize> {
    let k = data.num_classes();
    let freq: Vec<usize> = (0..k as i64)
        .map(|y| data.labels().iter().filter(|&&l| l == y).count())
        .collect();
    let mut counts: Vec<usize> = freq
        .iter()
        .map(|&f| (count as f64 * f as f64 / data.len() as f64).round() as usize)
        .collect();
    let total: usize = counts.iter().sum();
    let largest = (0..k).max_by_key(|&y| freq[y]).unwrap_or(0);
    counts[largest] = (counts[largest] + count).saturating_sub(total);
    counts
}

/// How many images [`write_mnist_proxy`] wrote, of which generator, from how many real ones.
#[derive(Debug, Serialize)]
pub struct ProxyOutcome {
    pub generator: &'static str,
    pub written: usize,
    pub real: usize,
    pub out: std::path::PathBuf,
}

impl std::fmt::Display for ProxyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} images from {} real ones -> {}",
            self.written,
            self.generator,
            self.real,
            self.out.display()
        )
    }
}

/// The generators of the `proxy` command.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ProxyName {
    Gaussian,
    PcaMixture,
    Interpolation,
    Oracle,
}

/// The `proxy` command: a generator, its settings, and how many samples to write where.
#[derive(Clone, Debug, clap::Args)]
pub struct ProxyRequest {
    #[arg(value_enum)]
    pub kind: ProxyName,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub out: std::path::PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The classifier's split: the first N training images (0: all 8,000). Generators are
    /// fitted on it; `oracle` writes the images after it.
    #[arg(long, default_value_t = 0)]
    pub train_subset: usize,
    /// pca-mixture: principal components kept.
    #[arg(long, default_value_t = 30)]
    pub dimensions: usize,
    /// pca-mixture: mixture components per class.
    #[arg(long, default_value_t = 10)]
    pub components: usize,
    /// interpolation: nearest neighbours to interpolate with.
    #[arg(long, default_value_t = 5)]
    pub neighbours: usize,
}

impl ProxyRequest {
    /// The generator with its settings.
    pub fn kind(&self) -> ProxyKind {
        match self.kind {
            ProxyName::Gaussian => ProxyKind::Gaussian,
            ProxyName::PcaMixture => ProxyKind::PcaMixture {
                dimensions: self.dimensions,
                components: self.components,
            },
            ProxyName::Interpolation => ProxyKind::Interpolation {
                neighbours: self.neighbours,
            },
            ProxyName::Oracle => ProxyKind::Oracle,
        }
    }
}

/// The `proxy` command: the requested proxy set for a classifier trained on the first
/// `train_subset` images (0: all) of the embedded MNIST-10k's training split, `count` labelled
/// images written to `out` as npz.
pub fn write_mnist_proxy(request: &ProxyRequest) -> Result<ProxyOutcome> {
    let (train, _) = crate::data::mnist10k()?;
    let (kind, out) = (request.kind(), &request.out);
    let samples = proxy_set(
        kind,
        &train,
        request.train_subset,
        request.count,
        request.seed,
    )?;
    crate::data::write_image_npz(out, &samples)?;
    Ok(ProxyOutcome {
        generator: kind.name(),
        written: samples.len(),
        real: train.subset(request.train_subset).len(),
        out: out.to_owned(),
    })
}

/// Every `(class, row)` of `rows_per_class` in an order shuffled by `seed` (a stream of its own,
/// so the samples do not depend on it).
fn shuffled_order(rows_per_class: &[Mat<f64>], seed: u64) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = rows_per_class
        .iter()
        .enumerate()
        .flat_map(|(y, rows)| (0..rows.nrows()).map(move |r| (y, r)))
        .collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x0dde_5eed));
    order
}

/// `count` proxy images for a classifier trained on the first `real_subset` images of `train`
/// (0: all of them): a generator fitted on those images, or for [`ProxyKind::Oracle`] the real
/// images that follow them in `train` (all that remain when fewer than `count`).
pub fn proxy_set(
    kind: ProxyKind,
    train: &ImageDataset,
    real_subset: usize,
    count: usize,
    seed: u64,
) -> Result<ImageDataset> {
    if real_subset > train.len() {
        return Err(Error::invalid(
            "train_subset",
            format!(
                "at most the {} training images (0: all), got {real_subset}",
                train.len()
            ),
        ));
    }
    crate::config::fits_in_memory(
        "count",
        "count × pixels per image",
        &[count, train.shape().iter().product()],
    )?;
    if kind != ProxyKind::Oracle {
        let split = if real_subset == 0 {
            train.len()
        } else {
            real_subset
        };
        return fit_and_sample(kind, &train.take(split), count, seed);
    }
    if count == 0 {
        return Err(Error::invalid("count", "at least 1 image"));
    }
    if real_subset == 0 || real_subset >= train.len() {
        return Err(Error::invalid(
            "train_subset",
            format!(
                "a classifier split smaller than the {} training images, so that the oracle has real images it does not contain; got {real_subset}",
                train.len()
            ),
        ));
    }
    Ok(train.range(real_subset, (real_subset + count).min(train.len())))
}

/// Fits `kind` on `train` and samples `count` labelled images (pixels clipped to [0, 1] and
/// rounded to uint8), reproducibly from `seed`, in an order shuffled across classes: any prefix
/// of the set (a run's `synthetic.limit`, a size sweep's first N) is a class-balanced random
/// subset, and so is any suffix (the held-out images of a bounds report).
pub fn fit_and_sample(
    kind: ProxyKind,
    train: &ImageDataset,
    count: usize,
    seed: u64,
) -> Result<ImageDataset> {
    if count == 0 {
        return Err(Error::invalid("count", "at least 1 image"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let counts = class_counts(train, count);
    let mut rows_per_class = Vec::with_capacity(counts.len());
    let basis = match kind {
        ProxyKind::PcaMixture { dimensions, .. } => Some(pca_mixture::Pca::fit(train, dimensions)?),
        _ => None,
    };
    for (y, &n) in counts.iter().enumerate() {
        let real = class_rows(train, y as i64);
        if real.nrows() < 2 {
            return Err(Error::invalid(
                "train",
                format!(
                    "at least 2 images of class {y} to fit a proxy, found {}",
                    real.nrows()
                ),
            ));
        }
        let sampled = match kind {
            ProxyKind::Gaussian => gaussian::sample(&real, n, &mut rng)?,
            ProxyKind::PcaMixture { components, .. } => pca_mixture::sample(
                basis.as_ref().expect("fitted above"),
                &real,
                components,
                n,
                &mut rng,
            )?,
            ProxyKind::Interpolation { neighbours } => {
                interpolation::sample(&real, neighbours, n, &mut rng)?
            }
            ProxyKind::Oracle => {
                return Err(Error::invalid(
                    "kind",
                    "a fitted generator; the oracle's images come from `proxy_set`",
                ));
            }
        };
        rows_per_class.push(sampled);
    }
    let d: usize = train.shape().iter().product();
    let (mut pixels, mut labels) = (Vec::with_capacity(count * d), Vec::with_capacity(count));
    for (y, r) in shuffled_order(&rows_per_class, seed) {
        let rows = &rows_per_class[y];
        pixels.extend((0..d).map(|c| (rows[(r, c)].clamp(0.0, 1.0) * 255.0).round() as u8));
        labels.push(y as i64);
    }
    ImageDataset::new(pixels, labels, train.shape(), train.num_classes())
}
