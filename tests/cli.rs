//! The command line end to end: the Theorem 1 sweep on a small config, `w2` and `cwd` on npz
//! files, and every bad-input case (one line on stderr naming the file or field, exit code 2).

use std::path::{Path, PathBuf};
use std::process::Output;

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::NpzWriter;

mod common;
use common::binary;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit code 2 and a single stderr line containing every needle.
fn assert_refused(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
}

const SMALL_SWEEP: &str = r#"
sweep = "theorem1"
name = "small"
seed = 3

[real]
classes = 3
dim = 8

[classifier]
kind = "adversarial"
train_samples_per_class = 100

[classifier.training]
epsilon = 0.2
steps = 100
learning_rate = 0.1

[proxies]
count = 9
min_strength = 0.01
max_strength = 1.0

[evaluation]
samples_per_class = 500
"#;

#[test]
fn theorem1_sweep_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(&config, SMALL_SWEEP).unwrap();
    let out = dir.path().join("run");
    let o = run(&[
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("Theorem 1: 9 proxies, 0 violations"),
        "{}",
        stdout(&o)
    );
    for file in [
        "theorem1.csv",
        "theorem1.png",
        "theorem1.svg",
        "real.npz",
        "report.md",
        "manifest.json",
    ] {
        assert!(
            out.join(file)
                .metadata()
                .map(|m| m.len() > 0)
                .unwrap_or(false),
            "missing {file}"
        );
    }
    let csv = std::fs::read_to_string(out.join("theorem1.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "proxy,perturbation,strength,cwd_w2,bound,mean_distance,rob_real,rob_real_half_width,rob_proxy,rob_proxy_half_width,delta_rob,delta_rob_half_width,holds,holds_point,attack_disagreement,unbroken"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        !report.contains("Rob is estimated"),
        "a linear classifier's distances are exact: {report}"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 9);
    for row in &rows {
        let (cwd, mean_distance, delta): (f64, f64, f64) = (
            row[3].parse().unwrap(),
            row[5].parse().unwrap(),
            row[10].parse().unwrap(),
        );
        assert!(
            mean_distance <= cwd + 1e-12,
            "the mean bound exceeds cwd: {row:?}"
        );
        assert!(delta <= cwd, "Theorem 1 fails on {row:?}");
        assert_eq!(row[12], "true");
    }
    assert_eq!(
        rows.iter().map(|r| r[1].as_str()).collect::<Vec<_>>()[..3],
        ["mean", "covariance", "both"]
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["config"]["real"]["dim"], 8);
    assert!(
        manifest["git_revision"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(manifest["device"].as_str().unwrap().starts_with("cpu"));
    // The real distribution is written for reuse by `cwd`: the distance to itself is zero.
    let real = out.join("real.npz");
    let o = run(&[
        "cwd",
        real.to_str().unwrap(),
        real.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["cwd"].as_f64().unwrap() < 1e-6);

    // Same seed, same numbers.
    let again = dir.path().join("again");
    assert!(
        run(&[
            "sweep",
            config.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
            "--quiet"
        ])
        .status
        .success()
    );
    assert_eq!(
        csv,
        std::fs::read_to_string(again.join("theorem1.csv")).unwrap()
    );

    // In shards: three shards and the merge give the same table and report; a merge with a
    // shard missing names the missing proxies.
    let split = dir.path().join("split");
    let sweep = |extra: &[&str]| sweep_part(&config, &split, extra);
    assert!(sweep(&["--shard", "1/3"]).status.success());
    assert_refused(
        &sweep(&["--merge"]),
        &["--merge", "missing: proxy 0, 2, 3, 5, 6, 8"],
    );
    for shard in ["0/3", "2/3"] {
        assert!(sweep(&["--shard", shard]).status.success());
    }
    assert!(sweep(&["--merge"]).status.success());
    for file in ["theorem1.csv", "report.md"] {
        assert_eq!(
            std::fs::read_to_string(split.join(file)).unwrap(),
            std::fs::read_to_string(out.join(file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn sweep_config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 7] = [
        (
            "sweep = \"theorem1\"\n[classifier.training]\nepsilon = -0.1\n",
            &["classifier.training.epsilon", "≥ 0"],
        ),
        (
            "sweep = \"theorem1\"\n[real]\nclasses = 1\n",
            &["real.classes", "at least 2"],
        ),
        (
            "sweep = \"theorem1\"\n[proxies]\nmin_strength = 2.0\nmax_strength = 1.0\n",
            &["proxies.max_strength"],
        ),
        (
            "sweep = \"theorem1\"\n[evaluation]\nconfidence = 1.5\n",
            &["evaluation.confidence"],
        ),
        (
            "sweep = \"theorem1\"\n[real]\ndims = 3\n",
            &["line 3", "unknown field `dims`"],
        ),
        (
            "sweep = \"theorem1\"\n[real]\ndim = \"many\"\n",
            &["line 3", "invalid type"],
        ),
        ("name = \"x\"\n", &["missing field `sweep`"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let o = run(&[
            "sweep",
            path.to_str().unwrap(),
            "--out",
            dir.path().join("never").to_str().unwrap(),
        ]);
        assert_refused(&o, needles);
        assert!(stderr(&o).contains(&format!("bad{i}.toml")));
    }
    assert!(
        !dir.path().join("never").exists(),
        "a refused config must not create outputs"
    );
    assert_refused(
        &run(&["sweep", "/nonexistent/config.toml"]),
        &["/nonexistent/config.toml", "cannot read"],
    );
}

#[test]
fn w2_and_cwd_commands_print_the_distance() {
    let (a, b) = (data("w2_d16_s2_a.npz"), data("w2_d16_s2_b.npz"));
    let o = run(&["w2", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!((v["w2"].as_f64().unwrap() - 6.821749964044801).abs() < 1e-11);
    let o = run(&["w2", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!((stdout(&o).trim().parse::<f64>().unwrap() - 6.821749964044801).abs() < 1e-11);

    let dir = tempfile::tempdir().unwrap();
    // Two 2-class sets in d = 1: class 0 shifts by 3, class 1 doubles its std (1 -> 3), probs 1/4, 3/4.
    let pa = write_npz(dir.path(), "ca.npz", |w| {
        w.add_array(
            "means",
            &Array2::from_shape_vec((2, 1), vec![0.0, 5.0]).unwrap(),
        )
        .unwrap();
        w.add_array(
            "covs",
            &Array3::from_shape_vec((2, 1, 1), vec![1.0, 1.0]).unwrap(),
        )
        .unwrap();
        w.add_array("probs", &Array1::from(vec![0.25, 0.75]))
            .unwrap();
    });
    let pb = write_npz(dir.path(), "cb.npz", |w| {
        w.add_array(
            "means",
            &Array2::from_shape_vec((2, 1), vec![3.0, 5.0]).unwrap(),
        )
        .unwrap();
        w.add_array(
            "covs",
            &Array3::from_shape_vec((2, 1, 1), vec![1.0, 9.0]).unwrap(),
        )
        .unwrap();
        w.add_array("probs", &Array1::from(vec![0.25, 0.75]))
            .unwrap();
    });
    let o = run(&["cwd", pa.to_str().unwrap(), pb.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!((v["cwd"].as_f64().unwrap() - 2.25).abs() < 1e-12);
    let per_class: Vec<f64> = v["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!((per_class[0] - 3.0).abs() < 1e-12 && (per_class[1] - 2.0).abs() < 1e-12);
}

fn write_npz(dir: &Path, name: &str, fill: impl FnOnce(&mut NpzWriter<std::fs::File>)) -> PathBuf {
    let path = dir.join(name);
    let mut w = NpzWriter::new(std::fs::File::create(&path).unwrap());
    fill(&mut w);
    w.finish().unwrap();
    path
}

#[test]
fn bad_npz_inputs_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = data("w2_d4_s1_a.npz");
    let good = good.to_str().unwrap();
    let eye = |d: usize| Array2::from_shape_fn((d, d), |(i, j)| if i == j { 1.0 } else { 0.0 });
    let missing = write_npz(dir.path(), "missing.npz", |w| {
        w.add_array("mean", &Array1::<f64>::zeros(4)).unwrap()
    });
    let float32 = write_npz(dir.path(), "float32.npz", |w| {
        w.add_array("mean", &Array1::<f32>::zeros(4)).unwrap();
        w.add_array("cov", &eye(4)).unwrap();
    });
    let shape = write_npz(dir.path(), "shape.npz", |w| {
        w.add_array("mean", &Array1::<f64>::zeros(4)).unwrap();
        w.add_array("cov", &eye(3)).unwrap();
    });
    let ndim = write_npz(dir.path(), "ndim.npz", |w| {
        w.add_array("mean", &Array2::<f64>::zeros((4, 1))).unwrap();
        w.add_array("cov", &eye(4)).unwrap();
    });
    let not_psd = write_npz(dir.path(), "notpsd.npz", |w| {
        w.add_array("mean", &Array1::<f64>::zeros(2)).unwrap();
        w.add_array(
            "cov",
            &Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 1.0]).unwrap(),
        )
        .unwrap();
    });
    let asym = write_npz(dir.path(), "asym.npz", |w| {
        w.add_array("mean", &Array1::<f64>::zeros(2)).unwrap();
        w.add_array(
            "cov",
            &Array2::from_shape_vec((2, 2), vec![1.0, 0.5, 0.2, 1.0]).unwrap(),
        )
        .unwrap();
    });
    let nan = write_npz(dir.path(), "nan.npz", |w| {
        w.add_array("mean", &Array1::from(vec![0.0, f64::NAN]))
            .unwrap();
        w.add_array("cov", &eye(2)).unwrap();
    });
    let garbage = dir.path().join("garbage.npz");
    std::fs::write(&garbage, b"this is not a zip archive").unwrap();
    let truncated = dir.path().join("truncated.npz");
    let bytes = std::fs::read(data("w2_d16_s2_a.npz")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    let p = |x: &PathBuf| x.to_str().unwrap().to_string();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (p(&missing), vec!["missing.npz", "missing key `cov`"]),
        (p(&float32), vec!["float32.npz", "`mean`", "float64"]),
        (p(&shape), vec!["shape.npz", "`cov`", "(4, 4)"]),
        (p(&ndim), vec!["ndim.npz", "`mean`", "(d,)"]),
        (p(&not_psd), vec!["notpsd.npz", "positive semidefinite"]),
        (p(&asym), vec!["asym.npz", "symmetric"]),
        (p(&nan), vec!["nan.npz", "finite"]),
        (p(&garbage), vec!["garbage.npz", "not a valid .npz"]),
        (p(&truncated), vec!["truncated.npz"]),
        (
            "/nonexistent.npz".into(),
            vec!["/nonexistent.npz", "cannot open"],
        ),
    ];
    for (path, needles) in &cases {
        assert_refused(&run(&["w2", good, path]), needles);
    }
    // Dimension mismatch between two valid files.
    assert_refused(
        &run(&["w2", good, data("w2_d16_s2_a.npz").to_str().unwrap()]),
        &["same dimension", "4 and 16"],
    );

    // cwd: a Gaussian file is not a class-conditional set; mismatched label distributions.
    assert_refused(&run(&["cwd", good, good]), &["missing key `means`"]);
    let two = |name: &str, probs: Vec<f64>| {
        write_npz(dir.path(), name, |w| {
            w.add_array("means", &Array2::<f64>::zeros((2, 1))).unwrap();
            w.add_array("covs", &Array3::from_elem((2, 1, 1), 1.0))
                .unwrap();
            w.add_array("probs", &Array1::from(probs)).unwrap();
        })
    };
    let (even, skewed) = (
        two("even.npz", vec![0.5, 0.5]),
        two("skewed.npz", vec![0.9, 0.1]),
    );
    assert_refused(
        &run(&["cwd", even.to_str().unwrap(), skewed.to_str().unwrap()]),
        &["identical class probabilities"],
    );
    let bad_probs = two("badprobs.npz", vec![0.5, 0.6]);
    assert_refused(
        &run(&["cwd", even.to_str().unwrap(), bad_probs.to_str().unwrap()]),
        &["badprobs.npz", "sum"],
    );
}

/// Runs a sweep config given as text; returns (stdout, run folder).
fn sweep(dir: &Path, name: &str, text: &str) -> (String, PathBuf) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    let out = dir.join(name);
    let o = run(&[
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    (stdout(&o), out)
}

/// `sweep CONFIG --out OUT --quiet` with `extra` flags (`--shard I/N`, `--merge`).
fn sweep_part(config: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sweep",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend(extra);
    run(&args)
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (
        header,
        lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect(),
    )
}

#[test]
fn theorem2_6_7_sweeps_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (text, out) = sweep(
        dir.path(),
        "t2",
        "sweep = \"theorem2\"\n[spheres]\ndims = [3]\nratios = [0.5, 1.5]\nsamples = 100\ngrid = 400\n[gaussians]\ncount = 3\ndim = 2\ngrid = 300\n",
    );
    assert!(
        text.contains("4 sphere pairs and 2 labeled sphere sets")
            && text.contains("0 outside 2%")
            && text.contains("3 Gaussian pairs (0 with"),
        "{text}"
    );
    let (header, rows) = csv_rows(&out.join("theorem2_spheres.csv"));
    assert_eq!(
        header,
        [
            "dim",
            "norm",
            "r",
            "r_tilde",
            "cwd",
            "arc_closed_form",
            "arc_empirical",
            "relative_error",
            "within_tolerance"
        ]
    );
    for row in &rows {
        let (cwd, arc): (f64, f64) = (row[4].parse().unwrap(), row[6].parse().unwrap());
        assert!((4.0 * arc - cwd).abs() <= 0.02 * cwd, "{row:?}");
    }
    let (header, rows) = csv_rows(&out.join("theorem2_gaussians.csv"));
    assert_eq!(
        header,
        ["pair", "shift", "w2", "arc_linear", "four_arc", "holds"]
    );
    assert!(
        rows.iter()
            .all(|r| r[4].parse::<f64>().unwrap() <= r[2].parse::<f64>().unwrap())
    );
    let (_, rows) = csv_rows(&out.join("theorem2_labeled.csv"));
    assert_eq!(rows.len(), 2);
    // Default classes [[1, 1.2], [2, 1.5], [0.5, 0.9]], uniform: cwd = (0.2 + 0.5 + 0.4)/3.
    assert!(
        rows.iter()
            .all(|r| (r[3].parse::<f64>().unwrap() - 1.1 / 3.0).abs() < 1e-12 && r[7] == "true")
    );
    for f in ["theorem2.png", "theorem2.svg", "report.md", "manifest.json"] {
        assert!(out.join(f).exists(), "{f}");
    }

    let (text, out) = sweep(
        dir.path(),
        "t6",
        "sweep = \"theorem6\"\nweights = 5\n[data]\nsamples_per_class = 12\n[data.model]\nclasses = 3\ndim = 4\n",
    );
    assert!(text.contains("5 mixture weights, 0 violations"), "{text}");
    let (header, rows) = csv_rows(&out.join("theorem6.csv"));
    assert_eq!(
        header,
        [
            "p",
            "cwd_mixture",
            "cwd_proxy",
            "bound",
            "delta_rob",
            "holds"
        ]
    );
    let last = rows.last().unwrap();
    assert_eq!(last[0], "1.0");
    assert!(
        last[1].parse::<f64>().unwrap().abs() < 1e-12,
        "p = 1 is the real data itself: {last:?}"
    );

    let (text, out) = sweep(
        dir.path(),
        "t7",
        "sweep = \"theorem7\"\nalphas = 6\n[data]\nsamples_per_class = 10\nnorm = \"linf\"\n[data.model]\nclasses = 3\ndim = 5\n",
    );
    assert!(text.contains("6 fractions α, 0 violations"), "{text}");
    let (_, rows) = csv_rows(&out.join("theorem7.csv"));
    for row in &rows {
        let v: Vec<f64> = row[..6].iter().map(|x| x.parse().unwrap()).collect();
        assert!(
            (v[3] - v[5]).abs() < 1e-9 && (v[4] - v[5]).abs() < 1e-9,
            "{row:?}"
        );
    }
}

/// The Theorem 2, 6 and 7 sweeps in two shards and a merge write the tables and report of one
/// whole run; a merge before the second shard names its missing rows.
#[test]
fn theorem2_6_7_sweeps_split_into_shards_and_merge_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, tables, missing) in [
        (
            "t2",
            "sweep = \"theorem2\"\n[spheres]\ndims = [3]\nratios = [0.5, 1.5]\nsamples = 100\ngrid = 400\n[gaussians]\ncount = 3\ndim = 2\ngrid = 300\n",
            &[
                "theorem2_spheres.csv",
                "theorem2_labeled.csv",
                "theorem2_gaussians.csv",
            ][..],
            "missing: item 1, 3, 5, 7",
        ),
        (
            "t6",
            "sweep = \"theorem6\"\nweights = 5\n[data]\nsamples_per_class = 12\n[data.model]\nclasses = 3\ndim = 4\n",
            &["theorem6.csv"][..],
            "missing: mixture 1, 3",
        ),
        (
            "t7",
            "sweep = \"theorem7\"\nalphas = 6\n[data]\nsamples_per_class = 10\nnorm = \"linf\"\n[data.model]\nclasses = 3\ndim = 5\n",
            &["theorem7.csv"][..],
            "missing: fraction 1, 3, 5",
        ),
    ] {
        let (_, whole) = sweep(dir.path(), name, text);
        let config = dir.path().join(format!("{name}.toml"));
        let split = dir.path().join(format!("{name}-split"));
        let part = |extra: &[&str]| sweep_part(&config, &split, extra);
        assert!(part(&["--shard", "0/2"]).status.success(), "{name}");
        assert_refused(&part(&["--merge"]), &["--merge", missing]);
        assert!(part(&["--shard", "1/2"]).status.success(), "{name}");
        assert!(part(&["--merge"]).status.success(), "{name}");
        for file in tables.iter().chain(&["report.md"]) {
            assert_eq!(
                std::fs::read_to_string(split.join(file)).unwrap(),
                std::fs::read_to_string(whole.join(file)).unwrap(),
                "{name}: {file}"
            );
        }
    }
}

#[test]
fn new_sweep_configs_refuse_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        (
            "sweep = \"theorem2\"\n[spheres]\nnorms = [\"l1\"]\n",
            &["spheres.norms"],
        ),
        (
            "sweep = \"theorem2\"\n[spheres]\nratios = [1.0]\n",
            &["spheres.ratios"],
        ),
        (
            "sweep = \"theorem6\"\n[proxy]\nstrength = -1.0\n",
            &["proxy.strength", "≥ 0"],
        ),
        (
            "sweep = \"theorem7\"\nalphas = 1\n",
            &["alphas", "at least 2"],
        ),
        (
            "sweep = \"theorem9\"\n",
            &["unknown sweep `theorem9`", "theorem7"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        assert_refused(&run(&["sweep", path.to_str().unwrap()]), needles);
    }
}

#[test]
fn arc_sphere_command() {
    for norm in ["l2", "linf"] {
        let o = run(&[
            "arc-sphere",
            "--r",
            "2",
            "--r-tilde",
            "1.2",
            "--dim",
            "7",
            "--norm",
            norm,
            "--samples",
            "300",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!((v["cwd"].as_f64().unwrap() - 0.8).abs() < 1e-12);
        assert!((v["arc_closed_form"].as_f64().unwrap() - 0.2).abs() < 1e-12);
        assert!((v["arc_empirical"].as_f64().unwrap() - 0.2).abs() < 0.02 * 0.2);
    }
    assert_refused(
        &run(&["arc-sphere", "--r=-1", "--r-tilde", "1", "--dim", "3"]),
        &["r:", "radius > 0"],
    );
    assert_refused(
        &run(&[
            "arc-sphere",
            "--r",
            "1",
            "--r-tilde",
            "2",
            "--dim",
            "3",
            "--norm",
            "l1",
        ]),
        &["norm"],
    );
}

/// `sample-gaussian` writes a vector set whose sample mean and variances match the Gaussian's
/// (within 4 standard errors), reproducibly for a seed; a bad count is refused.
#[test]
fn sample_gaussian_writes_a_vector_set_of_the_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let gaussian = dir.path().join("g.npz");
    let cov = faer::mat![[2.0, 0.0], [0.0, 0.5]];
    proxyrobust::npz::write_gaussian(
        &gaussian,
        &proxyrobust::theory::gaussian::Gaussian::new(vec![1.0, -2.0], cov).unwrap(),
    )
    .unwrap();
    let n = 20_000;
    let sample = |name: &str| {
        let out = dir.path().join(name);
        let o = run(&[
            "sample-gaussian",
            gaussian.to_str().unwrap(),
            "--count",
            &n.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--seed",
            "4",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(&out).unwrap()).unwrap();
        let x: Array2<f64> = npz.by_name("x").unwrap();
        x
    };
    let x = sample("a.npz");
    assert_eq!(x.dim(), (n, 2));
    for (j, (mean, var)) in [(1.0, 2.0), (-2.0, 0.5)].into_iter().enumerate() {
        let col: Vec<f64> = (0..n).map(|i| x[(i, j)]).collect();
        let m = col.iter().sum::<f64>() / n as f64;
        let v = col.iter().map(|c| (c - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        assert!((m - mean).abs() < 4.0 * (var / n as f64).sqrt(), "mean {m}");
        // The sample variance's standard error is var·√(2/(n−1)).
        assert!(
            (v - var).abs() < 4.0 * var * (2.0 / (n - 1) as f64).sqrt(),
            "variance {v}"
        );
    }
    assert_eq!(sample("b.npz"), x, "the same seed draws the same points");
    assert_refused(
        &run(&[
            "sample-gaussian",
            gaussian.to_str().unwrap(),
            "--count",
            "0",
            "--out",
            "x.npz",
        ]),
        &["--count"],
    );
}
