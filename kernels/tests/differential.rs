//! `trace_sqrt` and `add_transpose` against faer's dense routines on the matrix families where
//! tridiagonalisation and quadrature go wrong first: random, graded (eigenvalues over many
//! decades), clustered (eigenvalues equal to round-off), rank-deficient (half the eigenvalues
//! zero) and with tiny off-diagonal entries (nearly diagonal), each in a random orthogonal
//! basis except the last, on both sides of the two-stage threshold.

use faer::{Mat, Par, Side};
use proxyrobust_kernels::{TWO_STAGE_FROM, add_transpose, trace_sqrt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

fn normal_matrix(n: usize, rng: &mut StdRng) -> Mat<f64> {
    Mat::from_fn(n, n, |_, _| StandardNormal.sample(rng))
}

/// A random orthogonal matrix: the Q factor of a Gaussian matrix.
fn orthogonal(n: usize, rng: &mut StdRng) -> Mat<f64> {
    normal_matrix(n, rng).qr().compute_Q()
}

/// `Q diag(λ) Qᵀ`, symmetrised exactly.
fn with_spectrum(spectrum: &[f64], rng: &mut StdRng) -> Mat<f64> {
    let n = spectrum.len();
    let q = orthogonal(n, rng);
    let scaled = Mat::from_fn(n, n, |i, j| q[(i, j)] * spectrum[j]);
    let a = &scaled * q.transpose();
    Mat::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]))
}

/// Σ √max(λ, 0) from faer's dense symmetric eigenvalues, and the largest |λ|.
fn faer_reference(a: &Mat<f64>) -> (f64, f64) {
    let eigenvalues = a.self_adjoint_eigenvalues(Side::Lower).unwrap();
    let sum = eigenvalues.iter().map(|l| l.max(0.0).sqrt()).sum();
    let largest = eigenvalues.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    (sum, largest)
}

/// The families at order n: (name, matrix, whether it has zero eigenvalues).
fn families(n: usize, rng: &mut StdRng) -> Vec<(&'static str, Mat<f64>, bool)> {
    let b = normal_matrix(n, rng);
    let mut random = faer::Scale(1.0 / n as f64) * (&b * b.transpose());
    (0..n).for_each(|i| random[(i, i)] += 0.1);
    let graded: Vec<f64> = (0..n)
        .map(|i| 10f64.powf(-12.0 * i as f64 / n.max(2) as f64))
        .collect();
    let clustered: Vec<f64> = (0..n)
        .map(|i| {
            if i % 3 == 0 {
                2.0
            } else {
                2.0 + 1e-13 * i as f64
            }
        })
        .collect();
    let rank_deficient: Vec<f64> = (0..n)
        .map(|i| {
            if i < n.div_ceil(2) {
                1.0 + i as f64
            } else {
                0.0
            }
        })
        .collect();
    let tiny_off_diagonal = Mat::from_fn(n, n, |i, j| {
        if i == j {
            1.0 + i as f64 / n as f64
        } else {
            1e-14 * (((i * 31 + j * 17) % 7) as f64 - 3.0) * if i > j { 1.0 } else { 0.0 }
        }
    });
    let tiny_off_diagonal = Mat::from_fn(n, n, |i, j| tiny_off_diagonal[(i.max(j), i.min(j))]);
    vec![
        ("random", random, false),
        ("graded", with_spectrum(&graded, rng), false),
        ("clustered", with_spectrum(&clustered, rng), false),
        ("rank-deficient", with_spectrum(&rank_deficient, rng), n > 1),
        ("tiny off-diagonal", tiny_off_diagonal, false),
    ]
}

#[test]
fn trace_sqrt_agrees_with_faer_on_every_family_and_size() {
    let mut rng = StdRng::seed_from_u64(11);
    for n in [
        1,
        2,
        3,
        7,
        64,
        128,
        257,
        TWO_STAGE_FROM - 1,
        TWO_STAGE_FROM + 3,
    ] {
        for (name, a, singular) in families(n, &mut rng) {
            let (expected, largest) = faer_reference(&a);
            let mut work = a.clone();
            let ours = trace_sqrt(work.as_mut(), Par::rayon(2)).unwrap();
            // A zero eigenvalue comes out as ± c n ε λ_max, whose square root (or zero) is all
            // any method can give for it; otherwise both are accurate to a few ulps of √λ_max.
            let tolerance = if singular {
                n as f64 * (n as f64 * f64::EPSILON * largest).sqrt()
            } else {
                1e-12 * n as f64 * largest.sqrt()
            };
            assert!(
                (ours - expected).abs() <= tolerance,
                "n = {n}, {name}: {ours} vs faer {expected} (tolerance {tolerance:e})"
            );
        }
    }
}

#[test]
fn trace_sqrt_of_a_zero_matrix_is_zero_and_of_a_scaled_identity_closed_form() {
    let mut zero = Mat::<f64>::zeros(40, 40);
    assert_eq!(trace_sqrt(zero.as_mut(), Par::Seq).unwrap(), 0.0);
    let mut identity = Mat::<f64>::from_fn(50, 50, |i, j| if i == j { 4.0 } else { 0.0 });
    let sum = trace_sqrt(identity.as_mut(), Par::Seq).unwrap();
    assert!((sum - 100.0).abs() < 1e-12, "{sum}");
}

#[test]
fn add_transpose_matches_the_entrywise_definition() {
    let mut rng = StdRng::seed_from_u64(12);
    for n in [1, 3, 4, 5, 31, 33, 130] {
        let m = normal_matrix(n, &mut rng);
        for c in [0.5, 1.0] {
            let mut ours = m.clone();
            add_transpose(ours.as_mut(), c, true, f64::INFINITY).unwrap();
            for i in 0..n {
                for j in 0..n {
                    let expected = c * m[(i, j)] + c * m[(j, i)];
                    assert_eq!(ours[(i, j)], expected, "n = {n}, c = {c}, ({i}, {j})");
                }
            }
        }
    }
}

#[test]
fn add_transpose_reports_the_first_asymmetric_pair() {
    let mut m = Mat::<f64>::from_fn(20, 20, |i, j| (i + j) as f64);
    m[(13, 6)] += 1.0;
    let err = add_transpose(m.as_mut(), 0.5, true, 1e-9).unwrap_err();
    assert_eq!((err.row, err.col), (13, 6));
}
