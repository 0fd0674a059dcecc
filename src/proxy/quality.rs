//! Sample quality of a proxy set, judged against the real split of a training config: the
//! accuracy of a trained classifier on the samples (overall and per class), the mean ℓ2 pixel
//! distance from each sample to its nearest real training image beside the same distance for
//! real test images (a set much closer than real test images is memorising its training data;
//! one much farther is off the data), the Fréchet distance in the classifier's penultimate-layer
//! feature space (FID with the judging classifier in place of an Inception network) beside the
//! same distance for real test images, the Inception-style score of the same classifier's
//! predictions (Salimans et al. 2016 with the judging classifier in place of Inception), and a
//! grid of samples, one row per class, as PNG.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::data::{ImageDataset, read_image_npz};
use crate::error::{Error, Result};
use crate::report;
use crate::theory::gaussian::{Gaussian, wasserstein2};
use crate::train::classifier::{default_weights, input_shape, load_features, tensors};
use crate::train::{TrainConfig, load_classifier};

/// `quality.json`.
#[derive(Debug, Serialize)]
pub struct SampleQuality {
    pub samples: usize,
    /// Accuracy of the classifier on the samples' labels.
    pub classifier_accuracy: f64,
    pub classifier_accuracy_per_class: Vec<f64>,
    /// The same classifier's accuracy on the real test split, for scale.
    pub classifier_test_accuracy: f64,
    /// Mean ℓ2 distance (pixels in [0, 1]) from a sample to its nearest image of the real split
    /// the proxy was made from.
    pub nearest_real_distance: f64,
    /// The same for real test images (what a fresh draw from the data gives).
    pub test_nearest_real_distance: f64,
    /// Samples and test images used for the distances.
    pub distance_points: usize,
    /// Classifier-feature FID: W2² between Gaussians fitted to the penultimate-layer features of
    /// the samples and of the real split, ‖μ − μ̃‖² + tr(Σ + Σ̃ − 2(Σ^½ Σ̃ Σ^½)^½) (Heusel et
    /// al. 2017's formula, closed form of [`wasserstein2`]).
    pub fid: f64,
    /// The same for real test images against the real split (the floor a perfect proxy reaches
    /// with as many points).
    pub test_fid: f64,
    /// Samples and test images the FIDs use, and the feature dimension.
    pub fid_points: usize,
    pub feature_dimension: usize,
    /// Classifier-based Inception score of all samples, exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the
    /// mean prediction ([`inception_score`]): 1 for one constant prediction, the number of classes
    /// for confident predictions spread evenly over the classes.
    pub inception_score: f64,
    /// The same for the real test split.
    pub test_inception_score: f64,
}

impl std::fmt::Display for SampleQuality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples: classifier accuracy {:.4} (real test {:.4}); nearest real image at {:.3} (real test images: {:.3}); classifier-feature FID {:.3} (real test images: {:.3}); classifier Inception score {:.3} (real test images: {:.3})",
            self.samples,
            self.classifier_accuracy,
            self.classifier_test_accuracy,
            self.nearest_real_distance,
            self.test_nearest_real_distance,
            self.fid,
            self.test_fid,
            self.inception_score,
            self.test_inception_score
        )
    }
}

/// The `quality` command: judges the proxy set `proxy` against the classifier of `config`
/// (weights `weights`, default its run folder's) and the real split the proxy was made from (the
/// first `real_subset` training images of the config's dataset; `None`: the config's own
/// `train_subset`), and writes `quality.json`, `grid.png` and `manifest.json` under `out`.
/// Distances use the first `distance_points` samples and test images, the FIDs the first
/// `fid_points` (at least 2).
pub fn run(
    proxy: &Path,
    config: &TrainConfig,
    weights: Option<PathBuf>,
    out: &Path,
    distance_points: usize,
    fid_points: usize,
    real_subset: Option<usize>,
) -> Result<SampleQuality> {
    crate::config::at_least("--distance-points", distance_points, 1)?;
    crate::config::at_least("--fid-points", fid_points, 2)?;
    let weights = weights.unwrap_or_else(|| default_weights(config));
    let device = config.device.resolve()?;
    let mut manifest = report::Manifest::new("quality", config, report::device_name(device))?
        .with("proxy", proxy)?
        .with("weights", &weights)?
        .with("real_subset", real_subset)?;
    let classifier = load_classifier(config, &weights)?;
    let samples = read_image_npz(proxy, classifier.test.num_classes())?;
    if samples.shape() != classifier.test.shape() {
        return Err(Error::file(
            proxy,
            format!(
                "images of {:?} (H, W, C) like the classifier's data, got {:?}",
                classifier.test.shape(),
                samples.shape()
            ),
        ));
    }
    let (x, y) = tensors(&samples, device);
    let (train, _) = config.dataset.load()?;
    let train = train.subset(real_subset.unwrap_or(config.train_subset));
    let real = tensors(&train, device).0;
    let per_class = accuracy_per_class(&classifier.net, &x, &y, samples.num_classes());
    let counts: Vec<f64> = (0..samples.num_classes() as i64)
        .map(|k| samples.labels().iter().filter(|&&l| l == k).count() as f64)
        .collect();
    let correct: f64 = per_class.iter().zip(&counts).map(|(a, n)| a * n).sum();
    let test_classes = classifier.test.num_classes();
    let test_per_class =
        accuracy_per_class(&classifier.net, &classifier.x, &classifier.y, test_classes);
    let test_counts: Vec<f64> = (0..test_classes as i64)
        .map(|k| classifier.test.labels().iter().filter(|&&l| l == k).count() as f64)
        .collect();
    let test_correct: f64 = test_per_class
        .iter()
        .zip(&test_counts)
        .map(|(a, n)| a * n)
        .sum();
    let m = distance_points
        .min(samples.len())
        .min(classifier.test.len()) as i64;
    let (_features_vs, features) =
        load_features(config, &weights, input_shape(&samples), test_classes as i64)?;
    let k = fid_points.min(samples.len()).min(classifier.test.len()) as i64;
    let real_features = fitted_gaussian(&features_of(&features, &real))?;
    let frechet = |images: &Tensor| -> Result<f64> {
        let fitted = fitted_gaussian(&features_of(&features, &images.narrow(0, 0, k)))?;
        Ok(wasserstein2(&fitted, &real_features)?.powi(2))
    };
    let quality = SampleQuality {
        samples: samples.len(),
        classifier_accuracy: correct / samples.len() as f64,
        classifier_accuracy_per_class: per_class,
        classifier_test_accuracy: test_correct / classifier.test.len() as f64,
        nearest_real_distance: mean_nearest_distance(&x.narrow(0, 0, m), &real),
        test_nearest_real_distance: mean_nearest_distance(&classifier.x.narrow(0, 0, m), &real),
        distance_points: m as usize,
        fid: frechet(&x)?,
        test_fid: frechet(&classifier.x)?,
        fid_points: k as usize,
        feature_dimension: real_features.dim(),
        inception_score: inception_score(&predictions(&classifier.net, &x)),
        test_inception_score: inception_score(&predictions(&classifier.net, &classifier.x)),
    };
    report::create_run_dir(out)?;
    report::write_json(&out.join("quality.json"), &quality)?;
    write_grid(&out.join("grid.png"), &samples, 10)?;
    manifest.write(out, &["quality.json", "grid.png"])?;
    Ok(quality)
}

/// Accuracy of `net` on `(x, y)` for each class (NaN for a class with no point).
fn accuracy_per_class(net: &impl ModuleT, x: &Tensor, y: &Tensor, classes: usize) -> Vec<f64> {
    let n = x.size()[0];
    let mut predictions = Vec::with_capacity(n as usize);
    tch::no_grad(|| {
        for start in (0..n).step_by(512) {
            let len = 512.min(n - start);
            let logits = net.forward_t(&x.narrow(0, start, len), false);
            predictions.push(logits.argmax(-1, false));
        }
    });
    let predicted = Tensor::cat(&predictions, 0);
    (0..classes as i64)
        .map(|k| {
            let of_class = y.eq(k);
            let total = of_class.sum(Kind::Double).double_value(&[]);
            let right = (predicted.eq_tensor(y).logical_and(&of_class))
                .sum(Kind::Double)
                .double_value(&[]);
            right / total
        })
        .collect()
}

/// The class probabilities `softmax(net(x))` of every row of `x`, in batches (float64).
fn predictions(net: &impl ModuleT, x: &Tensor) -> Tensor {
    let n = x.size()[0];
    tch::no_grad(|| {
        let blocks: Vec<Tensor> = (0..n)
            .step_by(512)
            .map(|start| {
                net.forward_t(&x.narrow(0, start, 512.min(n - start)), false)
                    .to_kind(Kind::Double)
                    .softmax(-1, Kind::Double)
            })
            .collect();
        Tensor::cat(&blocks, 0)
    })
}

/// The Inception score of class probabilities `p` (one row per sample; Salimans et al. 2016):
/// `IS = exp( (1/N) Σ_x Σ_y p(y|x) · (log p(y|x) − log p̄(y)) )`, `p̄ = (1/N) Σ_x p(·|x)`, with
/// `0 · log 0 = 0`.
pub fn inception_score(p: &Tensor) -> f64 {
    let marginal = p.mean_dim(0, true, Kind::Double);
    let ratio = p.log() - marginal.log();
    // Terms with p(y|x) = 0 contribute 0 (where p̄(y) = 0 too, the log ratio is NaN).
    let terms = p.zeros_like().where_self(&p.eq(0.0), &(p * ratio));
    terms
        .sum_dim_intlist(1, false, Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
        .exp()
}

/// The penultimate-layer features of `images` (NCHW in [0, 1]) as float64 rows, in batches.
pub(crate) fn features_of(features: &impl ModuleT, images: &Tensor) -> Tensor {
    let n = images.size()[0];
    tch::no_grad(|| {
        let blocks: Vec<Tensor> = (0..n)
            .step_by(512)
            .map(|start| {
                features
                    .forward_t(&images.narrow(0, start, 512.min(n - start)), false)
                    .flatten(1, -1)
                    .to_kind(Kind::Double)
            })
            .collect();
        Tensor::cat(&blocks, 0)
    })
}

/// The Gaussian with the sample mean and the unbiased sample covariance of the rows of `rows`.
pub(crate) fn fitted_gaussian(rows: &Tensor) -> Result<Gaussian> {
    let [n, d] = rows.size()[..] else {
        return Err(Error::invalid("features", "a matrix of feature rows"));
    };
    let mean = rows.mean_dim(0, false, Kind::Double);
    let centred = rows - &mean;
    let cov = centred.transpose(0, 1).matmul(&centred) / (n - 1) as f64;
    let cov = ((&cov + cov.transpose(0, 1)) * 0.5)
        .to_device(tch::Device::Cpu)
        .contiguous();
    let values = Vec::<f64>::try_from(cov.flatten(0, -1))
        .map_err(|e| Error::invalid("features", e.to_string()))?;
    let mean = Vec::<f64>::try_from(mean.to_device(tch::Device::Cpu))
        .map_err(|e| Error::invalid("features", e.to_string()))?;
    let d = d as usize;
    Gaussian::new(mean, faer::Mat::from_fn(d, d, |i, j| values[i * d + j]))
}

/// Mean over the rows of `points` of the ℓ2 distance to the nearest row of `reference` (both
/// NCHW images, flattened), in blocks.
fn mean_nearest_distance(points: &Tensor, reference: &Tensor) -> f64 {
    let reference = reference.flatten(1, -1);
    let n = points.size()[0];
    let mut total = 0.0;
    tch::no_grad(|| {
        for start in (0..n).step_by(256) {
            let block = points.narrow(0, start, 256.min(n - start)).flatten(1, -1);
            // compute_mode 2: exact differences, not the matrix-product expansion (which leaves
            // about 1e-3 of float32 round-off between identical images).
            let nearest = Tensor::cdist(&block, &reference, 2.0, Some(2)).amin([1], false);
            total += nearest.sum(Kind::Double).double_value(&[]);
        }
    });
    total / n as f64
}

/// A PNG of up to `per_class` samples of every class, one row per class (grey or RGB).
fn write_grid(path: &Path, samples: &ImageDataset, per_class: usize) -> Result<()> {
    let [h, w, c] = samples.shape();
    let classes = samples.num_classes();
    let mut grid = image::RgbImage::new((per_class * w) as u32, (classes * h) as u32);
    let per = h * w * c;
    for class in 0..classes {
        let rows = (0..samples.len())
            .filter(|&i| samples.labels()[i] == class as i64)
            .take(per_class);
        for (column, i) in rows.enumerate() {
            let image = &samples.pixels()[i * per..(i + 1) * per];
            for (y, x) in (0..h).flat_map(|y| (0..w).map(move |x| (y, x))) {
                let at = (y * w + x) * c;
                let rgb = if c == 1 {
                    [image[at]; 3]
                } else {
                    [image[at], image[at + 1], image[at + 2]]
                };
                grid.put_pixel(
                    (column * w + x) as u32,
                    (class * h + y) as u32,
                    image::Rgb(rgb),
                );
            }
        }
    }
    report::atomic_write_path(path, |tmp| grid.save(tmp).map_err(|e| e.to_string()))
}
