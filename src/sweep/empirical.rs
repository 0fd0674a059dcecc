//! The empirical setting shared by the Theorem 6 and 7 sweeps: a labeled cloud drawn from
//! Gaussian class conditionals and the LDA classifier of those Gaussians.

use faer::Mat;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::theorem1::{RealModel, real_distribution};
use crate::config::at_least;
use crate::error::Result;
use crate::theory::gaussian::ClassConditionalGaussians;
use crate::theory::linear::{LinearClassifier, lda_classifier};
use crate::theory::norm::Norm;
use crate::theory::transport::LabeledCloud;

/// `[data]`: the Gaussian model, how many points per class are drawn, and the metric of
/// robustness and of the transport cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmpiricalData {
    pub model: RealModel,
    pub samples_per_class: usize,
    pub norm: Norm,
}

impl Default for EmpiricalData {
    fn default() -> Self {
        EmpiricalData {
            model: RealModel {
                classes: 5,
                dim: 16,
                mean_scale: 1.0,
                ..RealModel::default()
            },
            samples_per_class: 100,
            norm: Norm::L2,
        }
    }
}

impl EmpiricalData {
    /// Field checks; errors name the field under `data.`.
    pub fn validate(&self) -> Result<()> {
        at_least("data.samples_per_class", self.samples_per_class, 1)?;
        self.model.validate("data.model")?;
        self.model
            .fits_samples("data.samples_per_class", self.samples_per_class)
    }

    /// The Gaussian model and its LDA classifier.
    pub fn model(&self, rng: &mut StdRng) -> Result<(ClassConditionalGaussians, LinearClassifier)> {
        let dist = real_distribution(&self.model, rng)?;
        let classifier = lda_classifier(&dist)?;
        Ok((dist, classifier))
    }

    /// `samples_per_class` points from every class of `dist`.
    pub fn sample(
        &self,
        dist: &ClassConditionalGaussians,
        rng: &mut StdRng,
    ) -> Result<LabeledCloud> {
        let (n, k, d) = (self.samples_per_class, dist.num_classes(), dist.dim());
        let mut points = Mat::<f64>::zeros(n * k, d);
        let mut labels = Vec::with_capacity(n * k);
        for y in 0..k {
            points
                .as_mut()
                .subrows_mut(y * n, n)
                .copy_from(&dist.class(y).sample(n, rng));
            labels.extend(std::iter::repeat_n(y, n));
        }
        LabeledCloud::new(points, labels, k)
    }
}

/// `Rob_d(h, Ŝ)` on a labeled cloud: the exact mean distance to the decision boundary.
pub fn robustness(h: &LinearClassifier, s: &LabeledCloud, norm: Norm) -> f64 {
    let d = h.distances_to_boundary(s.points(), s.labels(), norm);
    d.iter().sum::<f64>() / d.len() as f64
}
