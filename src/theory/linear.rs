//! Exact average robustness of multi-class linear classifiers (Definition 1).
//!
//! For `h(x) = argmax_k (w_k·x + b_k)` and a correctly classified `(x, y)`, the set of inputs not
//! labelled `y` is the union over `j ≠ y` of the half-spaces `{x' : (w_j − w_y)·x' + b_j − b_y ≥ 0}`.
//! The distance in a norm `‖·‖` from `x` to a half-space `{u·x' ≥ c}` is `(c − u·x)/‖u‖_*` with
//! `‖·‖_*` the dual norm, so
//!
//! ```text
//! inf_{h(x') ≠ y} ‖x − x'‖ = min_{j ≠ y} (z_y − z_j) / ‖w_y − w_j‖_*,   z = W x + b,
//! ```
//!
//! and 0 when `x` is already misclassified. Averaging over samples gives `Rob_d(h, D)` with a
//! normal-approximation confidence interval. For a binary classifier on Gaussian classes the
//! expectation has a closed form, a truncated-normal mean: [`binary_gaussian_robustness`].

use faer::{Mat, MatRef};
use rand::Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

use super::gaussian::{ClassConditionalGaussians, Gaussian, standard_normal_matrix};
pub use super::norm::Norm;
use crate::error::{Error, Result};
use crate::stats::Estimate;

/// A multi-class linear classifier `h(x) = argmax_k (w_k·x + b_k)`; `weights` is K × d.
#[derive(Clone, Debug)]
pub struct LinearClassifier {
    weights: Mat<f64>,
    bias: Vec<f64>,
}

impl LinearClassifier {
    /// Validates shapes (K ≥ 2 rows, bias of length K) and finiteness.
    pub fn new(weights: Mat<f64>, bias: Vec<f64>) -> Result<Self> {
        let k = weights.nrows();
        if k < 2 {
            return Err(Error::invalid(
                "weights",
                format!("at least 2 classes (rows), got {k}"),
            ));
        }
        if weights.ncols() == 0 {
            return Err(Error::invalid(
                "weights",
                "at least one input dimension (column)",
            ));
        }
        if bias.len() != k {
            return Err(Error::invalid(
                "bias",
                format!("{k} entries to match the weights, got {}", bias.len()),
            ));
        }
        let finite = (0..k).all(|i| (0..weights.ncols()).all(|j| weights[(i, j)].is_finite()));
        if !finite || bias.iter().any(|b| !b.is_finite()) {
            return Err(Error::invalid(
                "linear classifier",
                "finite weights and bias",
            ));
        }
        Ok(LinearClassifier { weights, bias })
    }

    /// Number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.weights.nrows()
    }

    /// Input dimension `d`.
    pub fn dim(&self) -> usize {
        self.weights.ncols()
    }

    /// Weight matrix (K × d).
    pub fn weights(&self) -> MatRef<'_, f64> {
        self.weights.as_ref()
    }

    /// Bias (K).
    pub fn bias(&self) -> &[f64] {
        &self.bias
    }

    /// Logits `X Wᵀ + b` for the rows of `x` (n × d) as an n × K matrix.
    pub fn logits(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let mut z = x * self.weights.transpose();
        for (k, b) in self.bias.iter().enumerate() {
            z.col_mut(k).iter_mut().for_each(|v| *v += b);
        }
        z
    }

    /// Predicted labels of the rows of `x` (ties go to the lower index).
    pub fn predict(&self, x: MatRef<'_, f64>) -> Vec<usize> {
        let z = self.logits(x);
        (0..z.nrows())
            .map(|i| argmax((0..z.ncols()).map(|k| z[(i, k)])))
            .collect()
    }

    /// The dual norms `‖w_y − w_j‖_*` for every ordered pair, K × K.
    fn pairwise_dual_norms(&self, norm: Norm) -> Mat<f64> {
        let k = self.num_classes();
        Mat::from_fn(k, k, |y, j| norm.dual().of(&self.row_difference(y, j)))
    }

    fn row_difference(&self, y: usize, j: usize) -> Vec<f64> {
        (0..self.dim())
            .map(|c| self.weights[(y, c)] - self.weights[(j, c)])
            .collect()
    }

    /// Exact distance `inf_{h(x') ≠ y} ‖x − x'‖` from each row of `x` (label `labels[i]`) to the
    /// nearest input with another label: `min_{j≠y} (z_y − z_j)/‖w_y − w_j‖_*`, 0 if misclassified
    /// (a tie counts as misclassified). A point no other class can ever win gets `+∞`.
    pub fn distances_to_boundary(
        &self,
        x: MatRef<'_, f64>,
        labels: &[usize],
        norm: Norm,
    ) -> Vec<f64> {
        let z = self.logits(x);
        let dual = self.pairwise_dual_norms(norm);
        (0..z.nrows())
            .map(|i| {
                let y = labels[i];
                let mut best = f64::INFINITY;
                for j in (0..self.num_classes()).filter(|&j| j != y) {
                    let margin = z[(i, y)] - z[(i, j)];
                    if margin <= 0.0 {
                        return 0.0;
                    }
                    if dual[(y, j)] > 0.0 {
                        best = best.min(margin / dual[(y, j)]);
                    }
                }
                best
            })
            .collect()
    }

    /// The nearest input with another label for each row of `x`: `x − r u*/‖u‖_*`-type step onto
    /// the closest boundary half-space, with `r` the distance of [`Self::distances_to_boundary`].
    /// Misclassified rows are returned unchanged. Used by Lemma 3 and Theorem 7.
    pub fn nearest_adversarial(
        &self,
        x: MatRef<'_, f64>,
        labels: &[usize],
        norm: Norm,
    ) -> Result<Mat<f64>> {
        let z = self.logits(x);
        let dual = self.pairwise_dual_norms(norm);
        let mut out = x.to_owned();
        for i in 0..x.nrows() {
            let y = labels[i];
            let closest = (0..self.num_classes())
                .filter(|&j| j != y && dual[(y, j)] > 0.0)
                .map(|j| (j, (z[(i, y)] - z[(i, j)]) / dual[(y, j)]))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let Some((j, r)) = closest else {
                return Err(Error::invalid(
                    "classifier",
                    format!("some class able to beat class {y}"),
                ));
            };
            if r <= 0.0 {
                continue;
            }
            // The direction v with ‖v‖ = 1 maximising (w_j − w_y)·v is the dual norm's subgradient.
            let u: Vec<f64> = self.row_difference(j, y);
            let v = norm.dual().subgradient(&u);
            let scale = r / norm.of(&v).max(f64::MIN_POSITIVE);
            for c in 0..self.dim() {
                out[(i, c)] += scale * v[c];
            }
        }
        Ok(out)
    }
}

impl LinearClassifier {
    /// Theorem 7's construction `x + α(x' − x)`, `x'` the nearest adversarial example of `x`:
    /// α = 0 keeps the points, α = 1 gives the adversarial examples of Lemma 3.
    pub fn toward_adversarial(
        &self,
        x: MatRef<'_, f64>,
        labels: &[usize],
        alpha: f64,
        norm: Norm,
    ) -> Result<Mat<f64>> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(Error::invalid(
                "alpha",
                format!("a fraction in [0, 1], got {alpha}"),
            ));
        }
        let nearest = self.nearest_adversarial(x, labels, norm)?;
        Ok(Mat::from_fn(x.nrows(), x.ncols(), |i, j| {
            x[(i, j)] + alpha * (nearest[(i, j)] - x[(i, j)])
        }))
    }
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (k, v) in values.enumerate() {
        if v > best.1 {
            best = (k, v);
        }
    }
    best.0
}

/// `Rob_d(h, S)` of Definition 1 on a sample: the mean distance to the boundary with its
/// confidence interval. Refuses a classifier that cannot be fooled on some point (infinite mean).
pub fn average_robustness(
    classifier: &LinearClassifier,
    x: MatRef<'_, f64>,
    labels: &[usize],
    norm: Norm,
    confidence: f64,
) -> Result<Estimate> {
    check_inputs(classifier, x.ncols(), labels, x.nrows())?;
    let distances = classifier.distances_to_boundary(x, labels, norm);
    if distances.iter().any(|d| d.is_infinite()) {
        return Err(Error::invalid(
            "classifier",
            "a point with a finite distance to the decision boundary: some class can never be changed",
        ));
    }
    Estimate::from_samples(&distances, confidence)
}

fn check_inputs(classifier: &LinearClassifier, d: usize, labels: &[usize], n: usize) -> Result<()> {
    if d != classifier.dim() {
        return Err(Error::invalid(
            "inputs",
            format!(
                "dimension {} to match the classifier, got {d}",
                classifier.dim()
            ),
        ));
    }
    if labels.len() != n {
        return Err(Error::invalid(
            "labels",
            format!("{n} labels, one per input, got {}", labels.len()),
        ));
    }
    if let Some(y) = labels.iter().find(|&&y| y >= classifier.num_classes()) {
        return Err(Error::invalid(
            "labels",
            format!("labels below {}, got {y}", classifier.num_classes()),
        ));
    }
    Ok(())
}

/// Monte-Carlo `Rob_d(h, D)` on Gaussian class conditionals, stratified by class: `n` standard
/// normal draws per class `z`, mapped to `D|y` by its factor, combined as `Σ_y Pr[y] · mean_y`
/// with variance `Σ_y Pr[y]² s_y²/n`.
pub fn gaussian_robustness<R: Rng + ?Sized>(
    classifier: &LinearClassifier,
    dist: &ClassConditionalGaussians,
    norm: Norm,
    samples_per_class: usize,
    confidence: f64,
    rng: &mut R,
) -> Result<Estimate> {
    let draws = CommonDraws::new(dist.num_classes(), dist.dim(), samples_per_class, rng)?;
    let per_class = draws.class_distances(classifier, dist, norm)?;
    Estimate::stratified(&per_class, dist.probs(), confidence)
}

/// Standard normal draws shared across distributions (common random numbers): the same `z`
/// feeds `D|y` and `D~|y`, so the difference `Rob(h, D) − Rob(h, D~)` is estimated from paired
/// samples with a far smaller variance than two independent estimates.
pub struct CommonDraws {
    per_class: Vec<Mat<f64>>,
}

impl CommonDraws {
    /// `n` draws of dimension `d` for each of `k` classes.
    pub fn new<R: Rng + ?Sized>(k: usize, d: usize, n: usize, rng: &mut R) -> Result<Self> {
        if n < 2 {
            return Err(Error::invalid(
                "samples_per_class",
                format!("at least 2 samples per class, got {n}"),
            ));
        }
        Ok(CommonDraws {
            per_class: (0..k).map(|_| standard_normal_matrix(n, d, rng)).collect(),
        })
    }

    /// The draws mapped to each class of `dist` (`x = m_y + L_y z`), one n × d matrix per class.
    pub fn samples(&self, dist: &ClassConditionalGaussians) -> Result<Vec<Mat<f64>>> {
        if dist.num_classes() != self.per_class.len() {
            return Err(Error::invalid(
                "classes",
                format!(
                    "the same number of classes in the distribution ({}) and the draws ({})",
                    dist.num_classes(),
                    self.per_class.len()
                ),
            ));
        }
        Ok(self
            .per_class
            .iter()
            .enumerate()
            .map(|(y, z)| dist.class(y).transform_standard_normal(z.as_ref()))
            .collect())
    }

    /// Distances to the boundary of the mapped draws, per class.
    pub fn class_distances(
        &self,
        classifier: &LinearClassifier,
        dist: &ClassConditionalGaussians,
        norm: Norm,
    ) -> Result<Vec<Vec<f64>>> {
        if dist.num_classes() != self.per_class.len()
            || dist.num_classes() != classifier.num_classes()
        {
            return Err(Error::invalid(
                "classes",
                format!(
                    "the same number of classes in the distribution ({}), the classifier ({}) and the draws ({})",
                    dist.num_classes(),
                    classifier.num_classes(),
                    self.per_class.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(dist.num_classes());
        for (y, z) in self.per_class.iter().enumerate() {
            let x = dist.class(y).transform_standard_normal(z.as_ref());
            let labels = vec![y; x.nrows()];
            check_inputs(classifier, x.ncols(), &labels, x.nrows())?;
            let d = classifier.distances_to_boundary(x.as_ref(), &labels, norm);
            if d.iter().any(|v| v.is_infinite()) {
                return Err(Error::invalid(
                    "classifier",
                    format!("class {y} to be reachable by some other class"),
                ));
            }
            out.push(d);
        }
        Ok(out)
    }
}

/// Closed-form `Rob_d(h, D)` for a binary linear classifier on Gaussian classes.
///
/// With `u = w_1 − w_0` and `c = b_1 − b_0`, class 1 is correct when `s = u·x + c > 0`, class 0
/// when `−s > 0`, and the distance to the boundary is `max(±s, 0)/‖u‖_*`. For `x ~ N(m, S)` the
/// signed margin is `N(μ, σ²)` with `μ = ±(u·m + c)` and `σ² = uᵀ S u`, and the truncated-normal
/// mean `E[max(s, 0)] = μ Φ(μ/σ) + σ φ(μ/σ)` gives the exact value of Definition 1.
pub fn binary_gaussian_robustness(
    classifier: &LinearClassifier,
    dist: &ClassConditionalGaussians,
    norm: Norm,
) -> Result<f64> {
    if classifier.num_classes() != 2 || dist.num_classes() != 2 {
        return Err(Error::invalid(
            "classes",
            "a binary classifier and two Gaussian classes",
        ));
    }
    if classifier.dim() != dist.dim() {
        return Err(Error::invalid(
            "dimensions",
            "classifier and distribution of the same dimension",
        ));
    }
    let u = classifier.row_difference(1, 0);
    let c = classifier.bias[1] - classifier.bias[0];
    let dual = norm.dual().of(&u);
    if dual == 0.0 {
        return Err(Error::invalid(
            "classifier",
            "w_1 ≠ w_0, otherwise the boundary cannot be crossed",
        ));
    }
    let standard = Normal::standard();
    let mut total = 0.0;
    for (y, (g, p)) in dist.classes().iter().zip(dist.probs()).enumerate() {
        let sign = if y == 1 { 1.0 } else { -1.0 };
        let mu = sign * (dot(&u, g.mean()) + c);
        let sigma = quadratic_form(g, &u).max(0.0).sqrt();
        let positive_part = if sigma == 0.0 {
            mu.max(0.0)
        } else {
            mu * standard.cdf(mu / sigma) + sigma * standard.pdf(mu / sigma)
        };
        total += p * positive_part / dual;
    }
    Ok(total)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `uᵀ S u` for the covariance of `g`.
fn quadratic_form(g: &Gaussian, u: &[f64]) -> f64 {
    let s = g.cov();
    (0..u.len())
        .map(|i| u[i] * (0..u.len()).map(|j| s[(i, j)] * u[j]).sum::<f64>())
        .sum()
}

/// The Bayes classifier of a shared-covariance Gaussian model (linear discriminant analysis):
/// `w_y = S⁻¹ m_y`, `b_y = −½ m_yᵀ S⁻¹ m_y + ln Pr[y]`, with `S = Σ_y Pr[y] S_y` the pooled
/// covariance (the shared one when all classes share it). Refuses a singular pooled covariance
/// and classes of zero probability.
pub fn lda_classifier(dist: &ClassConditionalGaussians) -> Result<LinearClassifier> {
    let (k, d) = (dist.num_classes(), dist.dim());
    if k < 2 {
        return Err(Error::invalid(
            "classes",
            "at least two classes for a classifier",
        ));
    }
    if let Some(y) = dist.probs().iter().position(|p| *p <= 0.0) {
        return Err(Error::invalid(
            "probs",
            format!("positive class probabilities for LDA, class {y} has 0"),
        ));
    }
    let mut pooled = Mat::<f64>::zeros(d, d);
    for (g, p) in dist.classes().iter().zip(dist.probs()) {
        pooled += faer::Scale(*p) * g.cov();
    }
    let llt = pooled
        .llt(faer::Side::Lower)
        .map_err(|_| Error::invalid("pooled covariance", "a positive definite matrix for LDA"))?;
    let means = Mat::from_fn(d, k, |i, y| dist.class(y).mean()[i]);
    let solved = faer::linalg::solvers::Solve::solve(&llt, &means);
    let weights = solved.transpose().to_owned();
    let bias = (0..k)
        .map(|y| {
            -0.5 * (0..d).map(|i| means[(i, y)] * solved[(i, y)]).sum::<f64>()
                + dist.probs()[y].ln()
        })
        .collect();
    LinearClassifier::new(weights, bias)
}

/// Settings of [`adversarial_linear_classifier`]; fields left out of a config take the defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdversarialTraining {
    /// Threat-model radius ε (≥ 0).
    pub epsilon: f64,
    /// Threat-model norm.
    pub norm: Norm,
    /// Full-batch gradient steps.
    pub steps: usize,
    /// Step size.
    pub learning_rate: f64,
    /// Heavy-ball momentum in [0, 1).
    pub momentum: f64,
    /// ℓ2 penalty on the weights.
    pub weight_decay: f64,
}

impl Default for AdversarialTraining {
    fn default() -> Self {
        AdversarialTraining {
            epsilon: 0.5,
            norm: Norm::L2,
            steps: 300,
            learning_rate: 0.2,
            momentum: 0.9,
            weight_decay: 1e-4,
        }
    }
}

impl AdversarialTraining {
    /// Checks ranges; names the offending field.
    pub fn validate(&self) -> Result<()> {
        use crate::config::{non_negative_finite, positive_finite, unit_interval_open};
        non_negative_finite("classifier.training.epsilon", self.epsilon)?;
        positive_finite("classifier.training.learning_rate", self.learning_rate)?;
        unit_interval_open("classifier.training.momentum", self.momentum)?;
        non_negative_finite("classifier.training.weight_decay", self.weight_decay)?;
        if self.steps == 0 {
            return Err(Error::invalid(
                "classifier.training.steps",
                "at least one step",
            ));
        }
        Ok(())
    }
}

/// Adversarially trained linear classifier, by full-batch gradient descent in f64.
///
/// The worst-case loss of a linear model inside an ε-ball has a closed form on each pairwise
/// margin: `min_{‖δ‖≤ε} (z_y − z_j)(x + δ) = (z_y − z_j)(x) − ε‖w_y − w_j‖_*`. The objective is the
/// cross-entropy of the robust logits `z_j + ε‖w_j − w_y‖_*` (j ≠ y), exactly the adversarial loss
/// for K = 2 and its standard pairwise upper bound for K > 2, plus `weight_decay·‖W‖²/2`.
pub fn adversarial_linear_classifier(
    x: MatRef<'_, f64>,
    labels: &[usize],
    num_classes: usize,
    settings: &AdversarialTraining,
) -> Result<LinearClassifier> {
    settings.validate()?;
    let (n, d) = (x.nrows(), x.ncols());
    if n == 0 || labels.len() != n {
        return Err(Error::invalid(
            "training set",
            format!(
                "one label per sample and at least one sample, got {n} samples and {} labels",
                labels.len()
            ),
        ));
    }
    if num_classes < 2 || labels.iter().any(|&y| y >= num_classes) {
        return Err(Error::invalid(
            "labels",
            format!("labels in 0..{num_classes} with at least 2 classes"),
        ));
    }
    let k = num_classes;
    let mut model = LinearClassifier {
        weights: Mat::zeros(k, d),
        bias: vec![0.0; k],
    };
    let mut velocity_w = Mat::<f64>::zeros(k, d);
    let mut velocity_b = vec![0.0; k];
    for _ in 0..settings.steps {
        let (_, grad_w, grad_b) = robust_cross_entropy(&model, x, labels, settings);
        velocity_w = faer::Scale(settings.momentum) * &velocity_w + &grad_w;
        for (v, g) in velocity_b.iter_mut().zip(&grad_b) {
            *v = settings.momentum * *v + g;
        }
        model.weights -= faer::Scale(settings.learning_rate) * &velocity_w;
        for (b, v) in model.bias.iter_mut().zip(&velocity_b) {
            *b -= settings.learning_rate * v;
        }
    }
    LinearClassifier::new(model.weights, model.bias)
}

/// The training objective of [`adversarial_linear_classifier`] (mean robust cross-entropy plus
/// `weight_decay·‖W‖²/2`) and its gradient with respect to the weights and the bias.
pub fn robust_cross_entropy(
    model: &LinearClassifier,
    x: MatRef<'_, f64>,
    labels: &[usize],
    settings: &AdversarialTraining,
) -> (f64, Mat<f64>, Vec<f64>) {
    let (n, k) = (x.nrows(), model.num_classes());
    let dual = settings.norm.dual();
    let pair_norms = Mat::from_fn(k, k, |j, y| dual.of(&model.row_difference(j, y)));
    let mut logits = model.logits(x);
    // g[i, j] = ∂loss_i/∂(robust logit j); c[j, y] accumulates g[i, j] over samples of class y.
    let mut pair_weight = Mat::<f64>::zeros(k, k);
    let mut loss = 0.5 * settings.weight_decay * model.weights.squared_norm_l2();
    for i in 0..n {
        let y = labels[i];
        for j in (0..k).filter(|&j| j != y) {
            logits[(i, j)] += settings.epsilon * pair_norms[(j, y)];
        }
        let max = (0..k)
            .map(|j| logits[(i, j)])
            .fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = (0..k).map(|j| (logits[(i, j)] - max).exp()).sum();
        loss += (max + total.ln() - logits[(i, y)]) / n as f64;
        for j in 0..k {
            let p = (logits[(i, j)] - max).exp() / total;
            let g = (p - if j == y { 1.0 } else { 0.0 }) / n as f64;
            logits[(i, j)] = g;
            if j != y {
                pair_weight[(j, y)] += g;
            }
        }
    }
    let gradients = logits; // now holds ∂L/∂z
    let mut grad_w =
        gradients.transpose() * x + faer::Scale(settings.weight_decay) * &model.weights;
    let grad_b = (0..k).map(|j| gradients.col(j).iter().sum()).collect();
    for j in 0..k {
        for y in (0..k).filter(|&y| y != j && pair_weight[(j, y)] != 0.0) {
            let sub = dual.subgradient(&model.row_difference(j, y));
            let coef = settings.epsilon * pair_weight[(j, y)];
            for c in 0..model.dim() {
                grad_w[(j, c)] += coef * sub[c];
                grad_w[(y, c)] -= coef * sub[c];
            }
        }
    }
    (loss, grad_w, grad_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The hand-written gradient of the robust objective agrees with central finite differences,
    /// for each threat norm (the dual-norm subgradients differ).
    #[test]
    fn robust_cross_entropy_gradient_matches_finite_differences() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (n, d, k) = (40, 5, 3);
        let x = standard_normal_matrix(n, d, &mut rng);
        let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
        let weights = standard_normal_matrix(k, d, &mut rng);
        let model = LinearClassifier::new(weights, vec![0.1, -0.2, 0.3]).unwrap();
        for norm in [Norm::L1, Norm::L2, Norm::Linf] {
            let settings = AdversarialTraining {
                epsilon: 0.3,
                norm,
                weight_decay: 0.01,
                ..Default::default()
            };
            let (_, grad_w, grad_b) = robust_cross_entropy(&model, x.as_ref(), &labels, &settings);
            let h = 1e-6;
            for r in 0..k {
                for c in 0..d {
                    let mut plus = model.clone();
                    plus.weights[(r, c)] += h;
                    let mut minus = model.clone();
                    minus.weights[(r, c)] -= h;
                    let numeric = (robust_cross_entropy(&plus, x.as_ref(), &labels, &settings).0
                        - robust_cross_entropy(&minus, x.as_ref(), &labels, &settings).0)
                        / (2.0 * h);
                    assert!(
                        (numeric - grad_w[(r, c)]).abs() < 1e-6,
                        "{norm:?} w[{r},{c}]: {numeric} vs {}",
                        grad_w[(r, c)]
                    );
                }
                let mut plus = model.clone();
                plus.bias[r] += h;
                let mut minus = model.clone();
                minus.bias[r] -= h;
                let numeric = (robust_cross_entropy(&plus, x.as_ref(), &labels, &settings).0
                    - robust_cross_entropy(&minus, x.as_ref(), &labels, &settings).0)
                    / (2.0 * h);
                assert!(
                    (numeric - grad_b[r]).abs() < 1e-6,
                    "{norm:?} b[{r}]: {numeric} vs {}",
                    grad_b[r]
                );
            }
        }
    }

    /// Gradient descent lowers the objective, and for K = 2 the robust logit margin equals the
    /// exact worst case over the ε-ball: margin − ε‖w_1 − w_0‖_*.
    #[test]
    fn training_decreases_the_robust_objective() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 200;
        let mut x = standard_normal_matrix(n, 3, &mut rng);
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        for i in 0..n {
            x[(i, 0)] += if labels[i] == 1 { 2.0 } else { -2.0 };
        }
        let settings = AdversarialTraining {
            epsilon: 0.5,
            norm: Norm::L2,
            steps: 200,
            learning_rate: 0.1,
            ..Default::default()
        };
        let zero = LinearClassifier::new(Mat::zeros(2, 3), vec![0.0; 2]).unwrap();
        let start = robust_cross_entropy(&zero, x.as_ref(), &labels, &settings).0;
        let trained = adversarial_linear_classifier(x.as_ref(), &labels, 2, &settings).unwrap();
        let end = robust_cross_entropy(&trained, x.as_ref(), &labels, &settings).0;
        assert!((start - 2f64.ln()).abs() < 1e-12);
        assert!(end < 0.5 * start, "objective {start} -> {end}");
        let accuracy = trained
            .predict(x.as_ref())
            .iter()
            .zip(&labels)
            .filter(|(p, y)| p == y)
            .count() as f64
            / n as f64;
        assert!(accuracy > 0.95, "accuracy {accuracy}");
    }
}
