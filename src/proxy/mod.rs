//! Proxy distributions for the embedded default (paper Section 2.3's D̃, made without a
//! download): generators fitted on the real training split that sample any number of labelled
//! images, from good to poor proxies on purpose, one file per generator:
//! a class-conditional Gaussian with full covariance ([`gaussian`]), PCA followed by a
//! per-class diagonal Gaussian mixture ([`pca_mixture`]), and interpolation between nearest
//! neighbours of the same class ([`interpolation`]). Every generator keeps the real label
//! distribution (Theorem 1 compares distributions with the same class probabilities), so class
//! y receives round(count · p_y) samples.

pub mod gaussian;
pub mod interpolation;
pub mod pca_mixture;

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
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
}

impl ProxyKind {
    /// The name used in file names and tables.
    pub fn name(&self) -> &'static str {
        match self {
            ProxyKind::Gaussian => "gaussian",
            ProxyKind::PcaMixture { .. } => "pca-mixture",
            ProxyKind::Interpolation { .. } => "interpolation",
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

/// Fits `kind` on `train` and samples `count` labelled images (pixels clipped to [0, 1] and
/// rounded to uint8), reproducibly from `seed`.
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
        };
        rows_per_class.push(sampled);
    }
    let d: usize = train.shape().iter().product();
    let (mut pixels, mut labels) = (Vec::with_capacity(count * d), Vec::with_capacity(count));
    for (y, rows) in rows_per_class.iter().enumerate() {
        for r in 0..rows.nrows() {
            pixels.extend((0..d).map(|c| (rows[(r, c)].clamp(0.0, 1.0) * 255.0).round() as u8));
            labels.push(y as i64);
        }
    }
    ImageDataset::new(pixels, labels, train.shape(), train.num_classes())
}
