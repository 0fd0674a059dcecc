//! Pseudo-labelling of unconditional generators' images (paper Appendix D.2): each image gets
//! the label a trained classifier predicts. With two classifiers an image is discarded when they
//! disagree and neither is at least `threshold` (0.9) confident; when they disagree and one is,
//! the more confident one's label is kept.

use std::path::{Path, PathBuf};

use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::data::{ImageDataset, read_unlabeled_npz, write_image_npz};
use crate::error::{Error, Result};
use crate::train::classifier::{LoadedClassifier, default_weights, images_tensor};
use crate::train::{TrainConfig, load_classifier};

/// A classifier for [`run`]: its training config and weights (default: the config's run
/// folder's `weights.safetensors`).
pub struct Labeller {
    pub config: PathBuf,
    pub weights: Option<PathBuf>,
}

impl Labeller {
    fn load(&self) -> Result<LoadedClassifier> {
        let config = TrainConfig::load(&self.config)?;
        let weights = self
            .weights
            .clone()
            .unwrap_or_else(|| default_weights(&config));
        load_classifier(&config, &weights)
    }
}

/// How many of the input images [`run`] kept, and where.
pub struct PseudoLabelOutcome {
    pub kept: usize,
    pub total: usize,
    pub out: PathBuf,
}

impl std::fmt::Display for PseudoLabelOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kept {} of {} images ({} discarded) -> {}",
            self.kept,
            self.total,
            self.total - self.kept,
            self.out.display()
        )
    }
}

/// The `pseudo-label` command: labels the images of `input` (npz `image` uint8 (N, H, W, C))
/// with one classifier, or two under [`pseudo_labels`]' rule, and writes the kept images with
/// their labels to `out` (npz `image`, `label`).
pub fn run(
    input: &Path,
    first: &Labeller,
    second: Option<&Labeller>,
    threshold: f64,
    out: &Path,
) -> Result<PseudoLabelOutcome> {
    check_threshold(threshold)?;
    let first = first.load()?;
    let second = second.map(Labeller::load).transpose()?;
    let (pixels, n, shape) = read_unlabeled_npz(input)?;
    let expected = first.test.shape();
    if shape != expected {
        return Err(Error::file(
            input,
            format!("images of {expected:?} (H, W, C) like the classifier's data, got {shape:?}"),
        ));
    }
    let x = images_tensor(&pixels, n, shape, first.x.device());
    let mut classifiers: Vec<&dyn ModuleT> = vec![&first.net];
    if let Some(s) = &second {
        classifiers.push(&s.net);
    }
    let labels = pseudo_labels(&classifiers, &x, threshold, 256)?;
    let per = shape.iter().product::<usize>();
    let kept: Vec<(usize, i64)> = labels
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|l| (i, l)))
        .collect();
    let data = ImageDataset::new(
        kept.iter()
            .flat_map(|&(i, _)| pixels[i * per..(i + 1) * per].iter().copied())
            .collect(),
        kept.iter().map(|&(_, l)| l).collect(),
        shape,
        first.test.num_classes(),
    )?;
    write_image_npz(out, &data)?;
    Ok(PseudoLabelOutcome {
        kept: kept.len(),
        total: n,
        out: out.to_owned(),
    })
}

/// The confidence that settles a disagreement is a probability.
fn check_threshold(threshold: f64) -> Result<()> {
    if (0.0..=1.0).contains(&threshold) {
        Ok(())
    } else {
        Err(Error::invalid(
            "threshold",
            format!("a probability in [0, 1], got {threshold}"),
        ))
    }
}

/// The labels kept (`None`: discarded) for NCHW images `x` in [0, 1], in batches.
pub fn pseudo_labels(
    classifiers: &[&dyn ModuleT],
    x: &Tensor,
    threshold: f64,
    batch: i64,
) -> Result<Vec<Option<i64>>> {
    if classifiers.is_empty() || classifiers.len() > 2 {
        return Err(Error::invalid(
            "classifiers",
            format!("one or two, got {}", classifiers.len()),
        ));
    }
    check_threshold(threshold)?;
    let n = x.size()[0];
    let mut labels = Vec::with_capacity(n as usize);
    for start in (0..n).step_by(batch.max(1) as usize) {
        let xb = x.narrow(0, start, batch.min(n - start));
        let predictions: Vec<(Vec<i64>, Vec<f64>)> = classifiers
            .iter()
            .map(|c| {
                let p = tch::no_grad(|| c.forward_t(&xb, false).softmax(-1, Kind::Float));
                let (confidence, label) = p.max_dim(1, false);
                (
                    Vec::try_from(label).unwrap_or_default(),
                    Vec::try_from(confidence.to_kind(Kind::Double)).unwrap_or_default(),
                )
            })
            .collect();
        for i in 0..xb.size()[0] as usize {
            labels.push(match predictions.as_slice() {
                [(l, _)] => Some(l[i]),
                [(la, _), (lb, _)] if la[i] == lb[i] => Some(la[i]),
                [(la, ca), (lb, cb)] => {
                    let (label, confidence) = if ca[i] >= cb[i] {
                        (la[i], ca[i])
                    } else {
                        (lb[i], cb[i])
                    };
                    (confidence >= threshold).then_some(label)
                }
                _ => unreachable!("one or two classifiers"),
            });
        }
    }
    Ok(labels)
}
