//! Closed-form W2 and cwd against independent values: 1-D and commuting closed forms, point
//! masses, and values recorded from shared/reference/w2_reference.py (see tests/data/README.md
//! for the exact commands), plus metric properties under proptest.

use std::path::Path;

use faer::Mat;
use proptest::prelude::*;
use proxyrobust::npz::read_gaussian;
use proxyrobust::theory::gaussian::{
    ClassConditionalGaussians, Gaussian, TraceRoute, conditional_mean_distance,
    conditional_wasserstein, wasserstein2, wasserstein2_squared_by,
};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn relative_error(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn diagonal(values: &[f64]) -> Mat<f64> {
    Mat::from_fn(values.len(), values.len(), |i, j| {
        if i == j { values[i] } else { 0.0 }
    })
}

/// Values printed by `w2_reference.py --dim D --seed S --save tests/data/w2_dD_sS --routes chol,pot,sqrtm`
/// (all three routes agree to the digits kept here).
#[test]
fn matches_reference_script_on_random_full_rank_gaussians() {
    for (stem, expected) in [
        ("w2_d4_s1", 2.3825017894119576),
        ("w2_d16_s2", 6.821749964044801),
        ("w2_d64_s3", 12.841686137332559),
    ] {
        let a = read_gaussian(&data(&format!("{stem}_a.npz"))).unwrap();
        let b = read_gaussian(&data(&format!("{stem}_b.npz"))).unwrap();
        let w = wasserstein2(&a, &b).unwrap();
        assert!(
            relative_error(w, expected) < 1e-12,
            "{stem}: {w} vs {expected}"
        );
    }
}

/// The kernels' route and the faer-only reference route (dense symmetric eigenvalues) both give
/// the reference script's values, on full-rank pairs and on the singular pair.
#[test]
fn both_trace_routes_match_the_reference_values() {
    for (stem, expected) in [
        ("w2_d4_s1", 2.3825017894119576),
        ("w2_d16_s2", 6.821749964044801),
        ("w2_d64_s3", 12.841686137332559),
        ("w2_singular", 4.238975369115934),
    ] {
        let a = read_gaussian(&data(&format!("{stem}_a.npz"))).unwrap();
        let b = read_gaussian(&data(&format!("{stem}_b.npz"))).unwrap();
        for route in [TraceRoute::Kernels, TraceRoute::Faer] {
            let w = wasserstein2_squared_by(&a, &b, route).unwrap().sqrt();
            assert!(
                relative_error(w, expected) < 1e-10,
                "{stem} by {route:?}: {w} vs {expected}"
            );
        }
    }
}

/// A rank-2 covariance against a full-rank one: Cholesky of the singular side fails, so the
/// eigen-factor route is exercised. The reference is the rank-2 reduction computed in numpy
/// (tests/data/README.md); scipy's sqrtm route agrees to 1e-9 and POT returns NaN here.
#[test]
fn exact_for_singular_covariances() {
    let a = read_gaussian(&data("w2_singular_a.npz")).unwrap();
    let b = read_gaussian(&data("w2_singular_b.npz")).unwrap();
    let expected = 4.238975369115934;
    assert!(relative_error(wasserstein2(&a, &b).unwrap(), expected) < 1e-10);
    assert!(relative_error(wasserstein2(&b, &a).unwrap(), expected) < 1e-10);
}

/// Point mass δ_m against N(m', S): W2² = ‖m − m'‖² + tr S; two point masses: ‖m − m'‖.
#[test]
fn point_masses() {
    let p = read_gaussian(&data("w2_point_mass.npz")).unwrap();
    let a = read_gaussian(&data("w2_singular_a.npz")).unwrap();
    // w2_reference.py --a w2_singular_a.npz --b w2_point_mass.npz --routes sqrtm
    assert!(relative_error(wasserstein2(&a, &p).unwrap(), 3.0645596152641335) < 1e-10);
    let delta: f64 = p
        .mean()
        .iter()
        .zip(a.mean())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let trace: f64 = (0..a.dim()).map(|i| a.cov()[(i, i)]).sum();
    assert!(relative_error(wasserstein2(&p, &a).unwrap(), (delta + trace).sqrt()) < 1e-12);

    let q = Gaussian::point_mass(vec![3.0, -1.0, 2.0]).unwrap();
    let r = Gaussian::point_mass(vec![0.0, 3.0, 2.0]).unwrap();
    assert_eq!(wasserstein2(&q, &r).unwrap(), 5.0);
}

/// In one dimension W2 = sqrt((m1 − m2)² + (σ1 − σ2)²).
#[test]
fn one_dimensional_closed_form() {
    for (m1, s1, m2, s2) in [
        (0.0, 1.0, 0.0, 2.0),
        (1.5, 0.3, -2.0, 4.0),
        (0.0, 1e-6, 1.0, 1e3),
    ] {
        let a = Gaussian::new(vec![m1], diagonal(&[s1 * s1])).unwrap();
        let b = Gaussian::new(vec![m2], diagonal(&[s2 * s2])).unwrap();
        let expected = ((m1 - m2) * (m1 - m2) + (s1 - s2) * (s1 - s2)).sqrt();
        assert!(relative_error(wasserstein2(&a, &b).unwrap(), expected) < 1e-12);
    }
}

/// Commuting covariances S1 = Q D1 Qᵀ, S2 = Q D2 Qᵀ: W2² = ‖Δm‖² + Σ (√d1ᵢ − √d2ᵢ)².
#[test]
fn commuting_covariances() {
    let d1 = [4.0, 1.0, 0.25, 9.0];
    let d2 = [1.0, 1.0, 4.0, 0.0];
    // Q: a Householder reflection I − 2vvᵀ/‖v‖², orthogonal and symmetric.
    let v = [1.0, -2.0, 0.5, 3.0];
    let vv: f64 = v.iter().map(|x| x * x).sum();
    let q = Mat::from_fn(
        4,
        4,
        |i, j| if i == j { 1.0 } else { 0.0 } - 2.0 * v[i] * v[j] / vv,
    );
    let s1 = &q * diagonal(&d1) * q.transpose();
    let s2 = &q * diagonal(&d2) * q.transpose();
    let s1 = Mat::from_fn(4, 4, |i, j| 0.5 * (s1[(i, j)] + s1[(j, i)]));
    let s2 = Mat::from_fn(4, 4, |i, j| 0.5 * (s2[(i, j)] + s2[(j, i)]));
    let (m1, m2) = (vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 2.0, 5.0, 4.0]);
    let a = Gaussian::new(m1, s1).unwrap();
    let b = Gaussian::new(m2, s2).unwrap();
    let expected: f64 = 1.0
        + 4.0
        + d1.iter()
            .zip(&d2)
            .map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2))
            .sum::<f64>();
    assert!(relative_error(wasserstein2(&a, &b).unwrap(), expected.sqrt()) < 1e-10);
}

#[test]
fn cwd_is_the_probability_weighted_sum_of_class_distances() {
    let class = |m: f64, s: f64| Gaussian::new(vec![m], diagonal(&[s * s])).unwrap();
    let real =
        ClassConditionalGaussians::new(vec![class(0.0, 1.0), class(5.0, 1.0)], vec![0.25, 0.75])
            .unwrap();
    let proxy =
        ClassConditionalGaussians::new(vec![class(3.0, 1.0), class(5.0, 3.0)], vec![0.25, 0.75])
            .unwrap();
    let result = conditional_wasserstein(&real, &proxy).unwrap();
    assert!((result.per_class[0] - 3.0).abs() < 1e-12);
    assert!((result.per_class[1] - 2.0).abs() < 1e-12);
    assert!((result.cwd - (0.25 * 3.0 + 0.75 * 2.0)).abs() < 1e-12);
    assert!((conditional_mean_distance(&real, &proxy).unwrap() - 0.75).abs() < 1e-12);
}

#[test]
fn cwd_refuses_mismatched_label_distributions() {
    let class = |m: f64| Gaussian::new(vec![m], diagonal(&[1.0])).unwrap();
    let real =
        ClassConditionalGaussians::new(vec![class(0.0), class(1.0)], vec![0.5, 0.5]).unwrap();
    let skewed =
        ClassConditionalGaussians::new(vec![class(0.0), class(1.0)], vec![0.6, 0.4]).unwrap();
    let three =
        ClassConditionalGaussians::uniform(vec![class(0.0), class(1.0), class(2.0)]).unwrap();
    let err = conditional_wasserstein(&real, &skewed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("identical class probabilities"), "{err}");
    let err = conditional_wasserstein(&real, &three)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 and 3 classes"), "{err}");
}

#[test]
fn construction_refuses_invalid_parameters() {
    let cases: Vec<(Vec<f64>, Mat<f64>, &str)> = vec![
        (
            vec![0.0, 0.0],
            Mat::from_fn(2, 2, |i, j| [[1.0, 0.5], [0.4, 1.0]][i][j]),
            "symmetric",
        ),
        (
            vec![0.0, 0.0],
            Mat::from_fn(2, 2, |i, j| [[1.0, 2.0], [2.0, 1.0]][i][j]),
            "positive semidefinite",
        ),
        (vec![0.0, f64::NAN], diagonal(&[1.0, 1.0]), "finite"),
        (vec![0.0, 0.0], diagonal(&[1.0, f64::INFINITY]), "finite"),
        // NaN and −∞ off the diagonal, in columns long enough for the vectorised scan.
        (
            vec![0.0; 9],
            Mat::from_fn(9, 9, |i, j| match (i, j) {
                (5, 2) => f64::NAN,
                _ => f64::from(u8::from(i == j)),
            }),
            "entry (5, 2) is NaN",
        ),
        (
            vec![0.0; 9],
            Mat::from_fn(9, 9, |i, j| match (i, j) {
                (8, 7) => f64::NEG_INFINITY,
                _ => f64::from(u8::from(i == j)),
            }),
            "entry (8, 7) is -inf",
        ),
        // An asymmetric pair far from the first tile; the message names it.
        (
            vec![0.0; 70],
            Mat::from_fn(70, 70, |i, j| match (i, j) {
                (66, 40) => 0.5,
                _ => f64::from(u8::from(i == j)),
            }),
            "cov[66,40] = 0.5 and cov[40,66] = 0",
        ),
        (vec![0.0, 0.0, 0.0], diagonal(&[1.0, 1.0]), "shape (3, 3)"),
        (vec![], Mat::zeros(0, 0), "at least one dimension"),
    ];
    for (mean, cov, needle) in cases {
        let err = Gaussian::new(mean, cov).unwrap_err().to_string();
        assert!(err.contains(needle), "expected `{needle}` in `{err}`");
    }
    // Round-off-sized asymmetry and negative eigenvalues are accepted.
    let nearly = Mat::from_fn(2, 2, |i, j| [[1.0, 1.0], [1.0 + 1e-14, 1.0]][i][j]);
    assert!(Gaussian::new(vec![0.0, 0.0], nearly).is_ok());

    let g = Gaussian::new(vec![0.0], diagonal(&[1.0])).unwrap();
    for (probs, needle) in [
        (vec![0.5, 0.6], "sum to"),
        (vec![-0.5, 1.5], "non-negative"),
        (vec![1.0], "2 class probabilities"),
    ] {
        let err = ClassConditionalGaussians::new(vec![g.clone(), g.clone()], probs)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "expected `{needle}` in `{err}`");
    }
}

/// A random Gaussian in dimension `d` whose covariance has rank `rank` (0 = point mass).
fn gaussian_strategy(d: usize) -> impl Strategy<Value = Gaussian> {
    (
        prop::collection::vec(-5.0..5.0f64, d),
        0..=d,
        prop::collection::vec(-2.0..2.0f64, d * d),
    )
        .prop_map(move |(mean, rank, entries)| {
            let a = Mat::from_fn(d, rank, |i, j| entries[i * d + j]);
            let cov = &a * a.transpose();
            let cov = Mat::from_fn(d, d, |i, j| 0.5 * (cov[(i, j)] + cov[(j, i)]));
            Gaussian::new(mean, cov).unwrap()
        })
}

fn triple() -> impl Strategy<Value = (Gaussian, Gaussian, Gaussian)> {
    (1usize..7).prop_flat_map(|d| {
        (
            gaussian_strategy(d),
            gaussian_strategy(d),
            gaussian_strategy(d),
        )
    })
}

/// Slack for round-off in W2: its square is a difference of traces, so errors of order
/// 1e-12 · (tr S1 + tr S2) appear in W2² and their square roots in W2.
fn slack(a: &Gaussian, b: &Gaussian) -> f64 {
    let trace = |g: &Gaussian| (0..g.dim()).map(|i| g.cov()[(i, i)]).sum::<f64>();
    1e-5 * (1.0 + trace(a) + trace(b)).sqrt()
}

proptest! {
    #[test]
    fn w2_is_symmetric((a, b, _) in triple()) {
        let (ab, ba) = (wasserstein2(&a, &b).unwrap(), wasserstein2(&b, &a).unwrap());
        prop_assert!((ab - ba).abs() <= slack(&a, &b), "W2(a,b) = {ab}, W2(b,a) = {ba}");
    }

    #[test]
    fn w2_of_a_gaussian_with_itself_is_zero((a, _, _) in triple()) {
        let w = wasserstein2(&a, &a).unwrap();
        prop_assert!(w <= slack(&a, &a), "W2(a,a) = {w}");
    }

    #[test]
    fn w2_satisfies_the_triangle_inequality((a, b, c) in triple()) {
        let (ac, ab, bc) = (wasserstein2(&a, &c).unwrap(), wasserstein2(&a, &b).unwrap(), wasserstein2(&b, &c).unwrap());
        prop_assert!(ac <= ab + bc + slack(&a, &c) + slack(&a, &b), "{ac} > {ab} + {bc}");
    }

    #[test]
    fn w2_is_at_least_the_mean_distance((a, b, _) in triple()) {
        let w = wasserstein2(&a, &b).unwrap();
        let m: f64 = a.mean().iter().zip(b.mean()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
        prop_assert!(w + slack(&a, &b) >= m, "W2 = {w} < ‖Δm‖ = {m}");
    }
}
