//! proptest properties for every inequality and equality of the paper's Appendix A that can be
//! computed exactly: Theorem 1 on empirical measures, Lemma 3, Theorem 7, Theorem 6 and both
//! parts of Theorem 2. 256 cases each by default; PROPTEST_CASES raises it.

use faer::Mat;
use proptest::prelude::*;
use rand::SeedableRng;

use proxyrobust::theory::discrimination::gaussian_linear_arc;
use proxyrobust::theory::gaussian::{Gaussian, wasserstein2};
use proxyrobust::theory::linear::{LinearClassifier, average_robustness};
use proxyrobust::theory::mixture::mixture_bound;
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::sphere::ConcentricSpheres;
use proxyrobust::theory::transport::{LabeledCloud, empirical_conditional_wasserstein};

/// A random instance: a linear classifier with K classes in d dimensions and two labeled clouds
/// with the same class counts (`per_class` points each), the second a perturbation of the first
/// (or independent when `shift` is large).
#[derive(Debug, Clone)]
struct Instance {
    classifier: LinearClassifier,
    real: LabeledCloud,
    proxy: LabeledCloud,
    norm: Norm,
}

fn instance() -> impl Strategy<Value = Instance> {
    (
        2usize..4,
        1usize..4,
        1usize..5,
        prop::sample::select(vec![Norm::L1, Norm::L2, Norm::Linf]),
        any::<u64>(),
        0.0..3.0f64,
    )
        .prop_map(|(k, d, per_class, norm, seed, shift)| {
            use rand_distr::{Distribution, StandardNormal};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut draw = || -> f64 { StandardNormal.sample(&mut rng) };
            let weights = Mat::from_fn(k, d, |_, _| draw());
            let bias = (0..k).map(|_| draw()).collect();
            let classifier = LinearClassifier::new(weights, bias).unwrap();
            let n = k * per_class;
            let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
            let x = Mat::from_fn(n, d, |_, _| 2.0 * draw());
            let x_tilde = Mat::from_fn(n, d, |i, j| x[(i, j)] + shift * draw());
            let real = LabeledCloud::new(x, labels.clone(), k).unwrap();
            let proxy = LabeledCloud::new(x_tilde, labels, k).unwrap();
            Instance {
                classifier,
                real,
                proxy,
                norm,
            }
        })
}

fn rob(h: &LinearClassifier, s: &LabeledCloud, norm: Norm) -> f64 {
    let d = h.distances_to_boundary(s.points(), s.labels(), norm);
    d.iter().sum::<f64>() / d.len() as f64
}

fn tolerance(scale: f64) -> f64 {
    1e-9 * (1.0 + scale)
}

proptest! {
    /// Theorem 1 with no statistical slack: |Rob(h, Ŝ) − Rob(h, Ŝ')| ≤ cwd_W1(Ŝ, Ŝ'), exact OT in
    /// the metric of Rob.
    #[test]
    fn theorem1_on_empirical_measures(t in instance()) {
        let gap = (rob(&t.classifier, &t.real, t.norm) - rob(&t.classifier, &t.proxy, t.norm)).abs();
        let cwd = empirical_conditional_wasserstein(&t.real, &t.proxy, 1, t.norm).unwrap().cwd;
        prop_assert!(gap <= cwd + tolerance(cwd), "|ΔRob| = {gap} > cwd = {cwd}");
    }

    /// Lemma 3: Rob_d(h, Ŝ) = cwd(Ŝ, Ŝ') with Ŝ' the nearest adversarial examples.
    #[test]
    fn lemma3_robustness_is_the_distance_to_the_adversarial_distribution(t in instance()) {
        let adversarial = t.real.with_points(t.classifier.nearest_adversarial(t.real.points(), t.real.labels(), t.norm).unwrap()).unwrap();
        let r = rob(&t.classifier, &t.real, t.norm);
        let cwd = empirical_conditional_wasserstein(&t.real, &adversarial, 1, t.norm).unwrap().cwd;
        prop_assert!((r - cwd).abs() <= tolerance(r), "Rob = {r}, cwd = {cwd}");
        // The adversarial examples themselves have zero robustness.
        prop_assert!(rob(&t.classifier, &adversarial, t.norm) <= tolerance(r));
    }

    /// Theorem 7: moving each point a fraction α toward its nearest adversarial example gives
    /// Rob(h, Ŝ) − Rob(h, Ŝ_α) = cwd(Ŝ, Ŝ_α) = α·Rob(h, Ŝ).
    #[test]
    fn theorem7_tightness(t in instance(), alpha in 0.0..=1.0f64) {
        let moved = t.real.with_points(t.classifier.toward_adversarial(t.real.points(), t.real.labels(), alpha, t.norm).unwrap()).unwrap();
        let r = rob(&t.classifier, &t.real, t.norm);
        let drop = r - rob(&t.classifier, &moved, t.norm);
        let cwd = empirical_conditional_wasserstein(&t.real, &moved, 1, t.norm).unwrap().cwd;
        prop_assert!((drop - alpha * r).abs() <= tolerance(r), "drop {drop} vs α·Rob {}", alpha * r);
        prop_assert!((cwd - alpha * r).abs() <= tolerance(r), "cwd {cwd} vs α·Rob {}", alpha * r);
    }

    /// Theorem 6: cwd(Ŝ, p·Ŝ + (1 − p)·Ŝ~) ≤ (1 − p)·cwd(Ŝ, Ŝ~), exact weighted OT.
    #[test]
    fn theorem6_mixture_bound(t in instance(), p in 0.0..=1.0f64) {
        let m = mixture_bound(&t.real, &t.proxy, p, t.norm).unwrap();
        prop_assert!(m.cwd_mixture <= m.bound + tolerance(m.bound), "{m:?}");
    }

    /// Theorem 2, second part: on concentric uniform spheres (ℓ2, ℓ∞) the empirical ARC of the
    /// best radial discriminator lands within 2% of cwd/4 on a fine grid.
    #[test]
    fn theorem2_concentric_spheres(dim in 1usize..20, r in 0.5..3.0f64, ratio in 1.05..3.0f64, inner_is_real in any::<bool>(), linf in any::<bool>(), seed in any::<u64>()) {
        let (a, b) = if inner_is_real { (r, r * ratio) } else { (r * ratio, r) };
        let spheres = ConcentricSpheres::new(dim, a, b, if linf { Norm::Linf } else { Norm::L2 }).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let arc = spheres.empirical_arc(50, 1000, &mut rng).unwrap().arc;
        let expected = spheres.conditional_wasserstein() / 4.0;
        prop_assert!((arc - expected).abs() <= 0.02 * expected, "ARC {arc} vs cwd/4 {expected}");
    }

    /// Theorem 2, first part, on Gaussian pairs: 4·ARC of the best ℓ2-robust linear
    /// discriminator never exceeds the closed-form W2 (≥ W1 = cwd for one class).
    #[test]
    fn theorem2_gaussian_pairs(d in 1usize..4, entries in prop::collection::vec(-1.5..1.5f64, 4 * 9 + 6), floor in 0.0..0.5f64) {
        let cov = |offset: usize| {
            let a = Mat::from_fn(d, d, |i, j| entries[offset + i * 3 + j]);
            let s = &a * a.transpose();
            Mat::from_fn(d, d, |i, j| 0.5 * (s[(i, j)] + s[(j, i)]) + if i == j { floor } else { 0.0 })
        };
        let real = Gaussian::new(entries[36..36 + d].to_vec(), cov(0)).unwrap();
        let proxy = Gaussian::new(entries[39..39 + d].to_vec(), cov(9)).unwrap();
        prop_assume!(real.mean().iter().zip(proxy.mean()).any(|(a, b)| (a - b).abs() > 1e-3));
        let arc = gaussian_linear_arc(&real, &proxy, 400).unwrap().arc;
        let w2 = wasserstein2(&real, &proxy).unwrap();
        // Slack for the trapezoid rule on 400 steps.
        prop_assert!(4.0 * arc <= w2 * (1.0 + 1e-3) + 1e-9, "4·ARC = {} > W2 = {w2}", 4.0 * arc);
    }
}

/// Equal class proportions are Theorem 1's hypothesis: other proportions are refused.
#[test]
fn empirical_cwd_refuses_different_class_proportions() {
    let x = Mat::from_fn(4, 1, |i, _| i as f64);
    let a = LabeledCloud::new(x.clone(), vec![0, 0, 1, 1], 2).unwrap();
    let b = LabeledCloud::new(x, vec![0, 1, 1, 1], 2).unwrap();
    let err = empirical_conditional_wasserstein(&a, &b, 1, Norm::L2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("identical class proportions"), "{err}");
}

/// A case by hand for Theorem 1's bound being attained: every point moved straight toward the
/// boundary by δ changes each distance by exactly δ.
#[test]
fn theorem1_is_attained_by_a_shift_toward_the_boundary() {
    let h = LinearClassifier::new(
        Mat::from_fn(2, 1, |i, _| if i == 0 { -1.0 } else { 1.0 }),
        vec![0.0, 0.0],
    )
    .unwrap();
    let x = Mat::from_fn(4, 1, |i, _| [3.0, 4.0, -2.0, -5.0][i]);
    let labels = vec![1, 1, 0, 0];
    let real = LabeledCloud::new(x.clone(), labels.clone(), 2).unwrap();
    let moved = LabeledCloud::new(
        Mat::from_fn(4, 1, |i, _| x[(i, 0)] - 0.5 * x[(i, 0)].signum()),
        labels.clone(),
        2,
    )
    .unwrap();
    let gap = rob(&h, &real, Norm::L2) - rob(&h, &moved, Norm::L2);
    let cwd = empirical_conditional_wasserstein(&real, &moved, 1, Norm::L2)
        .unwrap()
        .cwd;
    assert!((gap - 0.5).abs() < 1e-15 && (cwd - 0.5).abs() < 1e-15);
    let est = average_robustness(&h, x.as_ref(), &labels, Norm::L2, 0.95).unwrap();
    assert!((est.mean - 3.5).abs() < 1e-15);
}
