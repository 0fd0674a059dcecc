//! Randomized smoothing (Cohen et al., 2019) against closed forms and recorded references.
//!
//! Clopper–Pearson lower bounds and binomial-test p-values were recorded with statsmodels 0.14
//! and scipy 1.16 (PyTorch 2.11.0's venv):
//!
//! ```text
//! from statsmodels.stats.proportion import proportion_confint
//! from scipy.stats import binomtest
//! proportion_confint(k, n, alpha=2 * 0.001, method="beta")[0]   # one-sided level 0.001
//! binomtest(k, n).pvalue
//! ```

use proxyrobust::smoothing::{
    SmoothingSettings, binomial_test_half, certified_accuracy, certified_radius,
    clopper_pearson_lower, predict_from_counts,
};
use statrs::distribution::{ContinuousCDF, Normal};

#[cfg(feature = "torch")]
mod common;

const CLOPPER_PEARSON_0_001: [(u64, u64, f64); 8] = [
    (1, 100, 1.0004953285956376e-05),
    (50, 100, 0.34479800642531777),
    (99, 100, 0.9113731112960424),
    (9_900, 10_000, 0.9865311593238062),
    (5_001, 10_000, 0.4846028791392971),
    (99_990, 100_000, 0.9997586773435911),
    (7, 10, 0.20463672209928987),
    (60_000, 100_000, 0.5952010472945846),
];

const BINOMIAL_TEST: [(u64, u64, f64); 6] = [
    (60, 100, 0.05688793364098089),
    (55, 100, 0.36820161732669615),
    (50, 100, 1.0),
    (0, 10, 0.001953125),
    (30, 40, 0.0022214337732293643),
    (530, 1000, 0.06202319509836343),
];

#[test]
fn clopper_pearson_matches_statsmodels() {
    for (k, n, expected) in CLOPPER_PEARSON_0_001 {
        let got = clopper_pearson_lower(k, n, 0.001).unwrap();
        assert!(
            (got - expected).abs() <= 1e-9 * expected.max(1e-3),
            "k={k} n={n}: {got} vs {expected}"
        );
    }
    // proportion_confint(95, 100, alpha=0.02, method="beta")[0]
    let got = clopper_pearson_lower(95, 100, 0.01).unwrap();
    assert!((got - 0.8741482693023214).abs() < 1e-9, "{got}");
    // Limiting cases: no success gives 0, all successes give α^(1/n).
    assert_eq!(clopper_pearson_lower(0, 50, 0.001).unwrap(), 0.0);
    let all = clopper_pearson_lower(10_000, 10_000, 0.001).unwrap();
    assert!((all - 0.001f64.powf(1e-4)).abs() < 1e-15, "{all}");
    assert!(clopper_pearson_lower(11, 10, 0.001).is_err());
    assert!(clopper_pearson_lower(1, 10, 1.0).is_err());
}

#[test]
fn binomial_test_matches_scipy() {
    for (k, n, expected) in BINOMIAL_TEST {
        let got = binomial_test_half(k, n).unwrap();
        assert!(
            (got - expected).abs() <= 1e-10,
            "k={k} n={n}: {got} vs {expected}"
        );
    }
}

#[test]
fn radius_is_sigma_times_the_normal_quantile_and_abstains_at_one_half() {
    let normal = Normal::standard();
    let r = certified_radius(0.5, 0.9).unwrap();
    assert!((r - 0.5 * normal.inverse_cdf(0.9)).abs() < 1e-15);
    assert!((r - 0.640_775_783_3).abs() < 1e-9, "{r}");
    assert_eq!(certified_radius(0.5, 0.5), None);
    assert_eq!(certified_radius(0.5, 0.2), None);
}

#[test]
fn predict_abstains_unless_the_top_two_counts_separate() {
    // 60 vs 40: p = 0.0569 > 0.001 abstains; at α = 0.1 it predicts.
    assert_eq!(predict_from_counts(&[10, 60, 40], 0.001).unwrap(), None);
    assert_eq!(predict_from_counts(&[10, 60, 40], 0.1).unwrap(), Some(1));
    assert_eq!(predict_from_counts(&[0, 0, 100], 0.001).unwrap(), Some(2));
    assert_eq!(predict_from_counts(&[50, 50], 0.5).unwrap(), None);
}

#[test]
fn certified_accuracy_counts_correct_points_at_or_beyond_each_radius() {
    let points = [(true, 0.5), (true, 0.0), (false, 2.0), (true, 1.0)];
    let curve = certified_accuracy(&points, &[0.0, 0.5, 0.75, 1.0, 1.5]);
    let got: Vec<f64> = curve.iter().map(|p| p.certified_accuracy).collect();
    assert_eq!(got, vec![0.75, 0.5, 0.25, 0.25, 0.0]);
}

#[test]
fn settings_refuse_bad_values_naming_the_field() {
    let good = SmoothingSettings {
        sigma: 0.25,
        n0: 100,
        n: 1000,
        alpha: 0.001,
        batch: 100,
    };
    good.validate().unwrap();
    for (bad, field) in [
        (SmoothingSettings { sigma: 0.0, ..good }, "sigma"),
        (
            SmoothingSettings {
                sigma: f64::NAN,
                ..good
            },
            "sigma",
        ),
        (SmoothingSettings { alpha: 0.0, ..good }, "alpha"),
        (SmoothingSettings { alpha: 1.0, ..good }, "alpha"),
        (SmoothingSettings { n0: 0, ..good }, "n0"),
        (SmoothingSettings { n: 0, ..good }, "n"),
        (SmoothingSettings { batch: 0, ..good }, "batch"),
        (
            SmoothingSettings {
                batch: 5000,
                ..good
            },
            "batch",
        ),
    ] {
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.starts_with(field), "{field}: {e}");
    }
}

#[cfg(feature = "torch")]
mod with_torch {
    use proxyrobust::smoothing::{Certificate, Smooth, SmoothingSettings, clopper_pearson_lower};
    use statrs::distribution::{ContinuousCDF, Normal};
    use tch::{Kind, Tensor, nn};

    fn settings(sigma: f64, n: usize) -> SmoothingSettings {
        SmoothingSettings {
            sigma,
            n0: 100,
            n,
            alpha: 0.001,
            batch: 10_000.min(n),
        }
    }

    /// Two classes: logit 0 for class 0 and w·x + b for class 1.
    fn linear(w: [f64; 2], b: f64) -> impl nn::ModuleT {
        let w = Tensor::from_slice(&w).to_kind(Kind::Float);
        nn::func_t(move |x, _| {
            let score = x.matmul(&w) + b;
            Tensor::stack(&[score.zeros_like(), score], -1)
        })
    }

    #[test]
    fn a_linear_classifier_is_certified_to_its_exact_radius_within_the_clopper_pearson_slack() {
        let _generator = super::common::torch_generator();
        // With δ ~ N(0, σ²I), Pr[w·(x+δ) + b > 0] = Φ(m / σ) for the signed distance
        // m = (w·x + b)/‖w‖, so the exact smoothed radius is |m| (the distance to the boundary).
        let (sigma, n) = (0.25, 100_000usize);
        let net = linear([3.0, 4.0], -1.0);
        let smooth = Smooth {
            base: &net,
            classes: 2,
            settings: settings(sigma, n),
        };
        let normal = Normal::standard();
        let points: [[f64; 2]; 4] = [[0.0, 0.0], [0.4, 0.3], [0.1, 0.0], [0.3, 0.1]];
        for (i, point) in points.iter().enumerate() {
            let margin = (3.0 * point[0] + 4.0 * point[1] - 1.0) / 5.0;
            let p = normal.cdf(margin.abs() / sigma);
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let radius_at = |k: f64| {
                let k = k.clamp(0.0, n as f64).round() as u64;
                let lower = clopper_pearson_lower(k, n as u64, 0.001).unwrap();
                if lower > 0.5 {
                    sigma * normal.inverse_cdf(lower)
                } else {
                    0.0
                }
            };
            let (low, high) = (
                radius_at(n as f64 * p - 5.0 * sd),
                radius_at(n as f64 * p + 5.0 * sd),
            );
            tch::manual_seed(i as i64);
            let x = Tensor::from_slice(point).to_kind(Kind::Float);
            match smooth.certify(&x).unwrap() {
                Certificate::Certified { class, radius } => {
                    assert_eq!(class, i64::from(margin > 0.0), "point {point:?}");
                    assert!(
                        low <= radius && radius <= high,
                        "{point:?}: radius {radius} outside [{low}, {high}] (exact {})",
                        margin.abs()
                    );
                    assert!(radius < margin.abs() + 0.01, "{radius} vs exact {margin}");
                }
                Certificate::Abstain => panic!("{point:?} (margin {margin}) abstained"),
            }
        }
    }

    #[test]
    fn a_constant_classifier_is_certified_everywhere_with_the_all_successes_radius() {
        let _generator = super::common::torch_generator();
        let net = nn::func_t(|x: &Tensor, _| {
            let logits = Tensor::from_slice(&[0.0f32, 0.0, 5.0]);
            logits.unsqueeze(0).expand([x.size()[0], 3], false)
        });
        let (sigma, n) = (0.5, 2_000);
        let smooth = Smooth {
            base: &net,
            classes: 3,
            settings: settings(sigma, n),
        };
        let expected = sigma * Normal::standard().inverse_cdf(0.001f64.powf(1.0 / n as f64));
        for seed in 0..3 {
            tch::manual_seed(seed);
            let x = Tensor::rand([1, 4, 4], (Kind::Float, tch::Device::Cpu));
            assert_eq!(
                smooth.certify(&x).unwrap(),
                Certificate::Certified {
                    class: 2,
                    radius: expected
                }
            );
            assert_eq!(smooth.predict(&x).unwrap(), Some(2));
        }
    }

    #[test]
    fn a_tie_between_two_classes_abstains() {
        let _generator = super::common::torch_generator();
        // Class 1 exactly when the first coordinate's noise is positive: p = ½ for both classes.
        let net = linear([1.0, 0.0], 0.0);
        let smooth = Smooth {
            base: &net,
            classes: 2,
            settings: settings(0.25, 10_000),
        };
        let x = Tensor::from_slice(&[0.0f32, 0.7]);
        for seed in 0..5 {
            tch::manual_seed(seed);
            assert_eq!(smooth.certify(&x).unwrap(), Certificate::Abstain);
            assert_eq!(smooth.predict(&x).unwrap(), None);
        }
    }

    #[test]
    fn certification_is_deterministic_for_a_seed() {
        let _generator = super::common::torch_generator();
        let net = linear([3.0, 4.0], -1.0);
        let smooth = Smooth {
            base: &net,
            classes: 2,
            settings: SmoothingSettings {
                batch: 300,
                ..settings(0.25, 1_000)
            },
        };
        let x = Tensor::from_slice(&[0.3f32, 0.2]);
        let run = |seed| {
            tch::manual_seed(seed);
            smooth.certify(&x).unwrap()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(
            run(7),
            run(8),
            "different noise, same radius: counts ignore the seed?"
        );
    }
}

#[cfg(feature = "torch")]
mod command {
    use std::path::Path;

    use super::common::binary;

    fn run(args: &[&str]) -> std::process::Output {
        binary().args(args).output().unwrap()
    }

    /// A CNN-2 trained for one epoch by stability training on 256 digits.
    fn trained(dir: &Path) -> (String, String) {
        let config = dir.join("stability.toml");
        std::fs::write(
            &config,
            "model = \"cnn2\"\nepochs = 1\nbatch_size = 64\ntrain_subset = 256\n\
             [objective]\nkind = \"stability\"\nsigma = 0.25\nbeta = 6.0\n[lr]\nbase = 0.05\n",
        )
        .unwrap();
        let out = dir.join("run");
        let (config, out) = (
            config.to_str().unwrap().to_string(),
            out.to_str().unwrap().to_string(),
        );
        let o = run(&["train", &config, "--out", &out, "--quiet"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (config, format!("{out}/weights.safetensors"))
    }

    #[test]
    fn certify_and_predict_write_their_tables_and_refuse_bad_flags() {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = trained(dir.path());
        let out = dir.path().join("certify");
        let o = run(&[
            "certify",
            &config,
            "--weights",
            &weights,
            "--sigma",
            "0.25",
            "--n",
            "500",
            "--skip",
            "10",
            "--limit",
            "6",
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(summary["images"], 6);
        let table = std::fs::read_to_string(out.join("samples.csv")).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "idx,label,predict,radius,correct,time");
        assert_eq!(lines.len(), 7, "{table}");
        let indices: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(indices, ["0", "10", "20", "30", "40", "50"]);
        // The largest radius n = 500 can certify: σ·Φ⁻¹(0.001^(1/500)).
        let cap = 0.25 * 2.205_186_3;
        for line in &lines[1..] {
            let radius: f64 = line.split(',').nth(3).unwrap().parse().unwrap();
            assert!((0.0..=cap).contains(&radius), "{line}");
        }
        let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
        assert!(
            curve.starts_with("radius,certified_accuracy\n0.0,"),
            "{curve}"
        );
        for f in [
            "summary.json",
            "certified_accuracy.png",
            "certified_accuracy.svg",
            "manifest.json",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        // Certifying a subset reproduces the same rows (image idx uses seed + idx).
        let again = dir.path().join("again");
        let o = run(&[
            "certify",
            &config,
            "--weights",
            &weights,
            "--sigma",
            "0.25",
            "--n",
            "500",
            "--skip",
            "20",
            "--limit",
            "2",
            "--out",
            again.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let strip_time = |l: &str| l.rsplit_once(',').unwrap().0.to_string();
        let subset: Vec<String> = std::fs::read_to_string(again.join("samples.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(strip_time)
            .collect();
        assert_eq!(subset, [strip_time(lines[1]), strip_time(lines[3])]);

        let predicted = dir.path().join("predict");
        let o = run(&[
            "predict",
            &config,
            "--weights",
            &weights,
            "--sigma",
            "0.25",
            "--n",
            "300",
            "--limit",
            "3",
            "--out",
            predicted.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let table = std::fs::read_to_string(predicted.join("samples.csv")).unwrap();
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .split(',')
                .nth(3)
                .unwrap()
                .is_empty()
        );

        for (flags, field) in [
            (vec!["--sigma", "0"], "--sigma"),
            (vec!["--sigma", "-0.5"], "--sigma"),
            (vec!["--sigma", "0.25", "--alpha", "1.5"], "--alpha"),
            (vec!["--sigma", "0.25", "--alpha", "0"], "--alpha"),
            (vec!["--sigma", "0.25", "--n0", "0"], "--n0"),
            (vec!["--sigma", "0.25", "--n", "0"], "--n"),
            (
                vec!["--sigma", "0.25", "--n", "100", "--batch", "500"],
                "--batch",
            ),
            (vec!["--sigma", "0.25", "--skip", "0"], "--skip"),
        ] {
            let bad = dir.path().join("bad");
            let mut args = vec![
                "certify",
                &config,
                "--weights",
                &weights,
                "--out",
                bad.to_str().unwrap(),
            ];
            args.extend(flags.iter().copied());
            let o = run(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
            assert!(
                err.lines().count() == 1 && err.contains(field),
                "{flags:?}: {err}"
            );
            assert!(!bad.exists(), "{flags:?} wrote {}", bad.display());
        }
    }

    /// A test set certified in three shards and merged gives the rows of one run (times aside);
    /// a merge with a shard missing, and a shard number out of range, are refused.
    #[test]
    fn shards_merge_into_the_rows_of_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = trained(dir.path());
        let certify = |out: &Path, extra: &[&str]| {
            let mut args = vec![
                "certify",
                &config,
                "--weights",
                &weights,
                "--sigma",
                "0.25",
                "--n",
                "300",
                "--skip",
                "3",
                "--limit",
                "7",
                "--quiet",
                "--out",
            ];
            let out = out.to_str().unwrap().to_string();
            args.push(&out);
            args.extend(extra);
            run(&args)
        };
        let (whole, sharded) = (dir.path().join("whole"), dir.path().join("sharded"));
        assert!(certify(&whole, &[]).status.success());
        for shard in ["0/3", "1/3", "2/3"] {
            let o = certify(&sharded, &["--shard", shard]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(
            !sharded.join("samples.csv").exists(),
            "a shard writes only its own rows"
        );
        assert!(certify(&sharded, &["--merge-shards", "3"]).status.success());
        let without_time = |dir: &Path| -> Vec<String> {
            std::fs::read_to_string(dir.join("samples.csv"))
                .unwrap()
                .lines()
                .map(|l| l.rsplit_once(',').unwrap().0.to_string())
                .collect()
        };
        assert_eq!(without_time(&sharded), without_time(&whole));
        assert_eq!(without_time(&whole).len(), 8);
        assert_eq!(
            std::fs::read_to_string(sharded.join("curve.csv")).unwrap(),
            std::fs::read_to_string(whole.join("curve.csv")).unwrap()
        );
        let o = certify(&dir.path().join("none"), &["--merge-shards", "2"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("missing shards 0, 1"));
        let o = certify(&dir.path().join("none"), &["--shard", "2/2"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("--shard"));
    }
}
