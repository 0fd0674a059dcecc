//! Exact optimal transport against POT (values recorded from shared/reference/ot_reference.py,
//! commands in tests/data/README.md), brute force over permutations, and metric properties.

use std::path::{Path, PathBuf};
use std::process::Command;

use faer::Mat;
use proptest::prelude::*;
use proxyrobust::npz::{read_points, read_weights};
use proxyrobust::theory::norm::Norm;
use proxyrobust::theory::transport::{
    EmpiricalMeasure, assignment, cost_matrix, network_simplex, wasserstein,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * b.abs().max(1.0)
}

#[test]
fn uniform_clouds_match_pot() {
    let x = read_points(&data("ot_n40_d5_x.npy")).unwrap();
    let y = read_points(&data("ot_n40_d5_y.npy")).unwrap();
    let (mu, nu) = (
        EmpiricalMeasure::uniform(x.clone()).unwrap(),
        EmpiricalMeasure::uniform(y.clone()).unwrap(),
    );
    for (p, metric, expected) in [
        (1, Norm::L2, 1.716562959934752),
        (2, Norm::L2, 1.8102613881214182),
        (1, Norm::L1, 3.0466582097727892),
        (1, Norm::Linf, 1.1928808643791269),
        (2, Norm::Linf, 1.2767763927636582),
    ] {
        let w = wasserstein(&mu, &nu, p, metric).unwrap().distance;
        assert!(
            close(w, expected),
            "p={p} {metric:?}: {w} vs POT {expected}"
        );
        // The general solver on the same problem agrees with the assignment solver.
        let costs = cost_matrix(x.as_ref(), y.as_ref(), metric, p);
        let (cost, plan) = network_simplex(&costs, mu.weights(), nu.weights()).unwrap();
        assert!(
            close(cost.powf(1.0 / p as f64), expected),
            "network simplex p={p} {metric:?}"
        );
        assert_marginals(&plan, mu.weights(), nu.weights());
    }
}

#[test]
fn weighted_clouds_match_pot() {
    let x = read_points(&data("ot_weighted_x.npy")).unwrap();
    let y = read_points(&data("ot_weighted_y.npy")).unwrap();
    let mu = EmpiricalMeasure::new(x, read_weights(&data("ot_weighted_wx.npy")).unwrap()).unwrap();
    let nu = EmpiricalMeasure::new(y, read_weights(&data("ot_weighted_wy.npy")).unwrap()).unwrap();
    for (p, metric, expected) in [
        (1, Norm::L2, 1.346282874480286),
        (2, Norm::L2, 1.4563164724411752),
        (1, Norm::L1, 2.2233741171201746),
        (1, Norm::Linf, 0.9877584111399401),
    ] {
        let t = wasserstein(&mu, &nu, p, metric).unwrap();
        assert!(
            close(t.distance, expected),
            "p={p} {metric:?}: {} vs POT {expected}",
            t.distance
        );
        assert_marginals(&t.plan, mu.weights(), nu.weights());
    }
}

fn assert_marginals(plan: &[(usize, usize, f64)], a: &[f64], b: &[f64]) {
    let mut rows = vec![0.0; a.len()];
    let mut cols = vec![0.0; b.len()];
    for &(i, j, f) in plan {
        assert!(f > 0.0);
        rows[i] += f;
        cols[j] += f;
    }
    for (r, w) in rows.iter().zip(a).chain(cols.iter().zip(b)) {
        assert!((r - w).abs() < 1e-12, "marginal {r} vs weight {w}");
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for k in 0..=p.len() {
            let mut q = p.clone();
            q.insert(k, n - 1);
            out.push(q);
        }
    }
    out
}

fn cloud_strategy(n: usize, d: usize) -> impl Strategy<Value = Mat<f64>> {
    prop::collection::vec(-3.0..3.0f64, n * d)
        .prop_map(move |v| Mat::from_fn(n, d, |i, j| v[i * d + j]))
}

fn weights_strategy(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.05..1.0f64, n).prop_map(|v| {
        let s: f64 = v.iter().sum();
        v.iter().map(|x| x / s).collect()
    })
}

proptest! {
    /// For equal uniform clouds the optimum is the best permutation (Birkhoff–von Neumann).
    #[test]
    fn assignment_is_the_best_permutation(n in 1usize..6, d in 1usize..4, seed_x in cloud_strategy(6, 3), seed_y in cloud_strategy(6, 3)) {
        let x = seed_x.subrows(0, n).subcols(0, d).to_owned();
        let y = seed_y.subrows(0, n).subcols(0, d).to_owned();
        let costs = cost_matrix(x.as_ref(), y.as_ref(), Norm::L2, 1);
        let brute = permutations(n).iter().map(|p| p.iter().enumerate().map(|(i, &j)| costs[(i, j)]).sum::<f64>() / n as f64).fold(f64::INFINITY, f64::min);
        let (cost, _) = assignment(&costs).unwrap();
        prop_assert!((cost - brute).abs() < 1e-12, "assignment {cost} vs brute force {brute}");
        let uniform = vec![1.0 / n as f64; n];
        let (simplex, _) = network_simplex(&costs, &uniform, &uniform).unwrap();
        prop_assert!((simplex - brute).abs() < 1e-12, "network simplex {simplex} vs brute force {brute}");
    }

    /// W_p is a metric on measures: symmetric, zero on identical measures, triangle inequality.
    #[test]
    fn wasserstein_is_a_metric(
        x in cloud_strategy(7, 2), y in cloud_strategy(5, 2), z in cloud_strategy(6, 2),
        wx in weights_strategy(7), wy in weights_strategy(5), wz in weights_strategy(6),
        p in 1u32..=2, metric in prop::sample::select(vec![Norm::L1, Norm::L2, Norm::Linf]),
    ) {
        let (a, b, c) = (EmpiricalMeasure::new(x, wx).unwrap(), EmpiricalMeasure::new(y, wy).unwrap(), EmpiricalMeasure::new(z, wz).unwrap());
        let w = |u: &EmpiricalMeasure, v: &EmpiricalMeasure| wasserstein(u, v, p, metric).unwrap().distance;
        prop_assert!((w(&a, &b) - w(&b, &a)).abs() < 1e-10);
        prop_assert!(w(&a, &a) < 1e-7);
        prop_assert!(w(&a, &c) <= w(&a, &b) + w(&b, &c) + 1e-10);
    }
}

#[test]
fn invalid_measures_are_refused() {
    let pts = Mat::from_fn(3, 2, |i, j| (i + j) as f64);
    for (weights, needle) in [
        (vec![0.5, 0.5], "3 weights"),
        (vec![0.5, 0.6, -0.1], "non-negative"),
        (vec![0.2, 0.2, 0.2], "sum"),
    ] {
        let err = EmpiricalMeasure::new(pts.clone(), weights)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let nan = Mat::from_fn(2, 2, |i, _| if i == 1 { f64::NAN } else { 0.0 });
    assert!(
        EmpiricalMeasure::uniform(nan)
            .unwrap_err()
            .to_string()
            .contains("finite")
    );
    let a = EmpiricalMeasure::uniform(pts.clone()).unwrap();
    let b = EmpiricalMeasure::uniform(Mat::zeros(3, 4)).unwrap();
    assert!(
        wasserstein(&a, &b, 1, Norm::L2)
            .unwrap_err()
            .to_string()
            .contains("same dimension")
    );
    assert!(
        wasserstein(&a, &a, 3, Norm::L2)
            .unwrap_err()
            .to_string()
            .contains("1 or 2")
    );
}

#[test]
fn ot_command_prints_the_distance_and_refuses_bad_files() {
    let bin = env!("CARGO_BIN_EXE_proxyrobust");
    let out = Command::new(bin)
        .args([
            "ot",
            data("ot_weighted_x.npy").to_str().unwrap(),
            data("ot_weighted_y.npy").to_str().unwrap(),
        ])
        .args([
            "--wx",
            data("ot_weighted_wx.npy").to_str().unwrap(),
            "--wy",
            data("ot_weighted_wy.npy").to_str().unwrap(),
        ])
        .args(["--p", "2", "--metric", "l2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(close(v["w"].as_f64().unwrap(), 1.4563164724411752));

    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("f32.npy");
    ndarray_npy::write_npy(&f32_path, &ndarray::Array2::<f32>::zeros((3, 2))).unwrap();
    let vec_path = dir.path().join("vec.npy");
    ndarray_npy::write_npy(&vec_path, &ndarray::Array1::<f64>::zeros(3)).unwrap();
    let x = data("ot_weighted_x.npy");
    let x = x.to_str().unwrap();
    for (args, needles) in [
        (
            vec!["ot", x, f32_path.to_str().unwrap()],
            vec!["f32.npy", "float64"],
        ),
        (
            vec!["ot", x, vec_path.to_str().unwrap()],
            vec!["vec.npy", "(n, d)"],
        ),
        (
            vec!["ot", x, x, "--wx", vec_path.to_str().unwrap()],
            vec!["vec.npy", "30 weights"],
        ),
        (
            vec!["ot", x, data("ot_n40_d5_x.npy").to_str().unwrap()],
            vec!["same dimension"],
        ),
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        for n in needles {
            assert!(err.contains(n), "expected `{n}` in {err}");
        }
    }
    let out = Command::new(bin)
        .args(["ot", x, x, "--p", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
