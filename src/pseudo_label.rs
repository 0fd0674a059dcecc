//! Pseudo-labelling of unconditional generators' images (paper Appendix D.2): each image gets
//! the label a trained classifier predicts. With two classifiers an image is discarded when they
//! disagree and neither is at least `threshold` (0.9) confident; when they disagree and one is,
//! the more confident one's label is kept.

use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

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
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::invalid(
            "threshold",
            format!("a probability in [0, 1], got {threshold}"),
        ));
    }
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
