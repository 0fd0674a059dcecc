//! Random concrete instances: a linear classifier and two labeled clouds with equal class counts.

use faer::Mat;
use proxyrobust::theory::linear::LinearClassifier;
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::transport::LabeledCloud;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// One instance of Theorem 1's setting on empirical measures.
pub struct Instance {
    pub classifier: LinearClassifier,
    pub real: LabeledCloud,
    pub proxy: LabeledCloud,
    pub norm: Norm,
    pub description: String,
}

/// A reproducible instance for `(seed, case)`: K ∈ {2, 3, 4} classes in d ∈ 1..=5 dimensions,
/// 1..=6 points per class, the proxy a Gaussian perturbation of the real points (strength
/// 0..3), the norm cycling through ℓ1, ℓ2, ℓ∞.
pub fn instance(seed: u64, case: usize) -> Instance {
    let mut rng = rng_for(seed, case);
    let k = rng.random_range(2..5);
    let d = rng.random_range(1..6);
    let per_class = rng.random_range(1..7);
    let shift = 3.0 * rng.random::<f64>();
    let norm = [Norm::L1, Norm::L2, Norm::Linf][case % 3];
    let mut draw = || -> f64 { StandardNormal.sample(&mut rng) };
    let classifier = LinearClassifier::new(
        Mat::from_fn(k, d, |_, _| draw()),
        (0..k).map(|_| draw()).collect(),
    )
    .expect("finite random weights");
    let n = k * per_class;
    let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
    let x = Mat::from_fn(n, d, |_, _| 2.0 * draw());
    let x_tilde = Mat::from_fn(n, d, |i, j| x[(i, j)] + shift * draw());
    Instance {
        classifier,
        real: LabeledCloud::new(x, labels.clone(), k).expect("valid cloud"),
        proxy: LabeledCloud::new(x_tilde, labels, k).expect("valid cloud"),
        norm,
        description: format!(
            "seed {seed}, case {case}: K={k}, d={d}, {per_class} points per class, shift {shift:.3}, {}",
            norm.name()
        ),
    }
}

/// The generator of case `case` under `seed`.
pub fn rng_for(seed: u64, case: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ case as u64)
}

/// `Rob_d(h, Ŝ)`: the exact mean distance to the decision boundary.
pub fn robustness(h: &LinearClassifier, s: &LabeledCloud, norm: Norm) -> f64 {
    let d = h.distances_to_boundary(s.points(), s.labels(), norm);
    d.iter().sum::<f64>() / d.len() as f64
}
