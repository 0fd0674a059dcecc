//! Exact average robustness of linear classifiers (Definition 1) against closed forms and
//! brute-force checks.

use faer::Mat;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use proxyrobust::theory::gaussian::{ClassConditionalGaussians, Gaussian, standard_normal_matrix};
use proxyrobust::theory::linear::{
    LinearClassifier, Norm, average_robustness, binary_gaussian_robustness, gaussian_robustness,
    lda_classifier,
};

const NORMS: [Norm; 3] = [Norm::L1, Norm::L2, Norm::Linf];

fn random_cov(d: usize, rng: &mut StdRng) -> Mat<f64> {
    let a = standard_normal_matrix(d, d, rng);
    let s = faer::Scale(1.0 / d as f64) * (&a * a.transpose());
    Mat::from_fn(d, d, |i, j| {
        0.5 * (s[(i, j)] + s[(j, i)]) + if i == j { 0.2 } else { 0.0 }
    })
}

/// Monte-Carlo Rob on two Gaussian classes (different covariances, unequal weights) lands in
/// its 99% interval around the truncated-normal closed form, for ℓ1, ℓ2 and ℓ∞.
#[test]
fn monte_carlo_matches_the_binary_closed_form() {
    let mut rng = StdRng::seed_from_u64(11);
    let d = 6;
    let g0 = Gaussian::new(vec![-0.6; d], random_cov(d, &mut rng)).unwrap();
    let g1 = Gaussian::new(vec![0.4; d], random_cov(d, &mut rng)).unwrap();
    let dist = ClassConditionalGaussians::new(vec![g0, g1], vec![0.3, 0.7]).unwrap();
    let h = lda_classifier(&dist).unwrap();
    for norm in NORMS {
        let exact = binary_gaussian_robustness(&h, &dist, norm).unwrap();
        let estimate = gaussian_robustness(&h, &dist, norm, 40_000, 0.99, &mut rng).unwrap();
        assert!(
            estimate.contains(exact),
            "{norm:?}: closed form {exact} outside {estimate:?}"
        );
        assert!(
            estimate.half_width < 0.02 * exact,
            "{norm:?}: interval too wide to test anything: {estimate:?}"
        );
    }
}

/// The closed form in a case done by hand: 1-D classes N(±2, 1), threshold at 0, so
/// Rob = E[max(Z + 2, 0)] = 2Φ(2) + φ(2) for every norm.
#[test]
fn binary_closed_form_by_hand() {
    let g = |m: f64| Gaussian::new(vec![m], Mat::from_fn(1, 1, |_, _| 1.0)).unwrap();
    let dist = ClassConditionalGaussians::uniform(vec![g(-2.0), g(2.0)]).unwrap();
    let h = LinearClassifier::new(
        Mat::from_fn(2, 1, |i, _| if i == 0 { -1.0 } else { 1.0 }),
        vec![0.0, 0.0],
    )
    .unwrap();
    // Φ(2) and φ(2) to 16 digits (scipy.stats.norm.cdf(2), norm.pdf(2)).
    let expected = 2.0 * 0.9772498680518208 + 0.05399096651318806;
    for norm in NORMS {
        // Here ‖w_1 − w_0‖_* = 2 and the margin is 2x, so distances are exactly max(±x, 0).
        let value = binary_gaussian_robustness(&h, &dist, norm).unwrap();
        // statrs's Φ is accurate to about 1e-12.
        assert!(
            (value - expected).abs() < 1e-11,
            "{norm:?}: {value} vs {expected}"
        );
    }
}

/// Brute force: no perturbation shorter than the computed distance changes the label, and the
/// nearest adversarial point sits at that distance on the decision boundary.
#[test]
fn distance_to_boundary_is_the_smallest_label_changing_perturbation() {
    let mut rng = StdRng::seed_from_u64(21);
    let (k, d, n) = (4, 3, 50);
    let h = LinearClassifier::new(
        standard_normal_matrix(k, d, &mut rng),
        vec![0.3, -0.1, 0.0, 0.2],
    )
    .unwrap();
    let x = standard_normal_matrix(n, d, &mut rng);
    let labels = h.predict(x.as_ref());
    for norm in NORMS {
        let r = h.distances_to_boundary(x.as_ref(), &labels, norm);
        let nearest = h.nearest_adversarial(x.as_ref(), &labels, norm).unwrap();
        let logits = h.logits(nearest.as_ref());
        for i in 0..n {
            let step: Vec<f64> = (0..d).map(|c| nearest[(i, c)] - x[(i, c)]).collect();
            assert!(
                (norm.of(&step) - r[i]).abs() < 1e-9 * (1.0 + r[i]),
                "{norm:?}: step {} vs r {}",
                norm.of(&step),
                r[i]
            );
            let y = labels[i];
            let best_other = (0..k)
                .filter(|&j| j != y)
                .map(|j| logits[(i, j)])
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(
                best_other >= logits[(i, y)] - 1e-9,
                "{norm:?}: nearest point is not on the boundary"
            );
            for _ in 0..200 {
                let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
                let scale = 0.999 * r[i] / norm.of(&v);
                let moved = Mat::from_fn(1, d, |_, c| x[(i, c)] + scale * v[c]);
                assert_eq!(
                    h.predict(moved.as_ref())[0],
                    y,
                    "{norm:?}: a shorter perturbation changed the label"
                );
            }
        }
    }
}

#[test]
fn misclassified_points_have_zero_distance_and_averages_refuse_unreachable_classes() {
    let h = LinearClassifier::new(
        Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        vec![0.0, 0.0],
    )
    .unwrap();
    let x = Mat::from_fn(2, 2, |i, j| [[1.0, 3.0], [2.0, 0.0]][i][j]);
    let r = h.distances_to_boundary(x.as_ref(), &[0, 0], Norm::L2);
    assert_eq!(r[0], 0.0);
    assert!((r[1] - 2.0 / 2f64.sqrt()).abs() < 1e-15);
    let est = average_robustness(&h, x.as_ref(), &[0, 0], Norm::L2, 0.95).unwrap();
    assert!((est.mean - 1.0 / 2f64.sqrt()).abs() < 1e-15);

    let constant = LinearClassifier::new(Mat::zeros(2, 2), vec![1.0, 0.0]).unwrap();
    let err = average_robustness(&constant, x.as_ref(), &[0, 0], Norm::L2, 0.95)
        .unwrap_err()
        .to_string();
    assert!(err.contains("finite distance"), "{err}");
}

/// With a shared diagonal covariance the LDA rule is the Bayes rule: it agrees with the argmax
/// of the log-density plus log-prior written out coordinate by coordinate.
#[test]
fn lda_is_the_bayes_classifier_for_a_shared_covariance() {
    let mut rng = StdRng::seed_from_u64(5);
    let (k, d) = (3, 4);
    let var = [0.5, 1.0, 2.0, 0.25];
    let cov = Mat::from_fn(d, d, |i, j| if i == j { var[i] } else { 0.0 });
    let means: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    let probs = vec![0.2, 0.5, 0.3];
    let dist = ClassConditionalGaussians::new(
        means
            .iter()
            .map(|m| Gaussian::new(m.clone(), cov.clone()).unwrap())
            .collect(),
        probs.clone(),
    )
    .unwrap();
    let h = lda_classifier(&dist).unwrap();
    let x = standard_normal_matrix(500, d, &mut rng);
    let predicted = h.predict(x.as_ref());
    for i in 0..500 {
        let score = |y: usize| -> f64 {
            -0.5 * (0..d)
                .map(|c| (x[(i, c)] - means[y][c]).powi(2) / var[c])
                .sum::<f64>()
                + probs[y].ln()
        };
        let bayes = (0..k)
            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
            .unwrap();
        assert_eq!(predicted[i], bayes);
    }
}

/// Euclidean W2 dominates ℓ2 and ℓ∞ robustness directly, ℓ1 only after the √d factor.
#[test]
fn euclidean_domination_factor() {
    let u = [3.0, -4.0, 0.0, 1.0];
    for norm in NORMS {
        assert!(norm.of(&u) <= norm.euclidean_domination_factor(u.len()) * Norm::L2.of(&u) + 1e-12);
    }
    assert_eq!(Norm::L1.euclidean_domination_factor(16), 4.0);
    let ones = [1.0; 16];
    assert_eq!(
        Norm::L1.of(&ones),
        Norm::L1.euclidean_domination_factor(16) * Norm::L2.of(&ones)
    );
}
