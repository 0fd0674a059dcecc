//! The PORT experiment runner (feature `torch`) end to end on a tiny grid: its outputs exist and
//! agree with each other, a second run reuses finished runs instead of retraining them, and a
//! changed setting retrains exactly the runs it affects.
#![cfg(feature = "torch")]

use std::path::Path;

mod common;
use common::binary;

fn config(gammas: &str) -> String {
    format!(
        "name = \"tiny\"\nreal_subset = 200\nproxies = [{{ kind = \"gaussian\" }}]\nsynthetic_counts = [300]\ngammas = {gammas}\nseeds = [0]\n\
         [train]\nmodel = \"cnn2\"\nepochs = 1\nbatch_size = 50\n[train.lr]\nbase = 0.05\n\
         [evaluation]\nautoattack = \"fast\"\nthreat = {{ norm = \"linf\", epsilon = 0.1 }}\nlimit = 20\n"
    )
}

fn run(config_text: &str, dir: &Path) -> String {
    let file = dir.join("tiny.toml");
    std::fs::write(&file, config_text).unwrap();
    let out = dir.join("out");
    let o = binary()
        .args([
            "experiment",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out.join("runs.csv")).unwrap()
}

fn modified(dir: &Path, run: &str) -> std::time::SystemTime {
    std::fs::metadata(dir.join("out/models").join(run).join("weights.safetensors"))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn an_experiment_reports_every_run_and_resumes_without_retraining() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(&config("[0.4]"), dir.path());
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 3, "header, baseline and one PORT run: {first}");
    assert!(
        lines[1].starts_with("baseline,none,,0,0,")
            && lines[2].starts_with("port-gaussian-g0.4-n300,gaussian,0.4,300,0,"),
        "{first}"
    );
    for row in &lines[1..] {
        let fields: Vec<f64> = row.split(',').skip(5).map(|v| v.parse().unwrap()).collect();
        let (clean, robust) = (fields[0], fields[1]);
        assert!((0.0..=1.0).contains(&clean) && robust <= clean, "{row}");
    }
    for output in [
        "summary.csv",
        "report.md",
        "robust_accuracy.png",
        "robust_accuracy.svg",
        "manifest.json",
        "proxies/gaussian.npz",
    ] {
        assert!(dir.path().join("out").join(output).exists(), "{output}");
    }
    let summary = std::fs::read_to_string(dir.path().join("out/summary.csv")).unwrap();
    assert!(summary.starts_with("arm,seeds,clean_mean,clean_std,robust_mean,robust_std,robust_gain_pp,robust_gain_low_pp,robust_gain_high_pp,collapsed_runs"), "{summary}");
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("port-gaussian-g0.4-n300: ") && report.contains("from one seed"),
        "{report}"
    );
    let (baseline, port) = (
        modified(dir.path(), "baseline-s0"),
        modified(dir.path(), "port-gaussian-g0.4-n300-s0"),
    );

    // The same config again: identical rows, nothing retrained.
    assert_eq!(run(&config("[0.4]"), dir.path()), first);
    assert_eq!(modified(dir.path(), "baseline-s0"), baseline);
    assert_eq!(modified(dir.path(), "port-gaussian-g0.4-n300-s0"), port);

    // A γ sweep (plotted against γ): the finished runs are reused, only γ = 0.6 is new.
    let swept = run(&config("[0.4, 0.6]"), dir.path());
    assert_eq!(swept.lines().take(3).collect::<Vec<_>>(), lines);
    assert!(
        swept
            .lines()
            .nth(3)
            .unwrap()
            .starts_with("port-gaussian-g0.6-n300,"),
        "{swept}"
    );
    assert_eq!(modified(dir.path(), "baseline-s0"), baseline);
    assert_eq!(modified(dir.path(), "port-gaussian-g0.4-n300-s0"), port);
    assert!(
        dir.path()
            .join("out/models/port-gaussian-g0.6-n300-s0/result.json")
            .exists()
    );
    let svg = std::fs::read_to_string(dir.path().join("out/robust_accuracy.svg")).unwrap();
    assert!(
        svg.contains("weight of the real loss"),
        "the γ sweep is plotted against γ"
    );
}

/// The γ and size sweeps share the grid's recipe exactly, which is what lets them reuse the
/// grid's seed-0 runs (docs/experiments.md).
#[test]
fn the_mnist_sweeps_share_the_grid_recipe() {
    use proxyrobust::experiment::PortExperiment;
    let load = |name: &str| {
        PortExperiment::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("experiments")
                .join(name),
        )
        .unwrap()
    };
    let recipe = |e: &PortExperiment| serde_json::json!({ "train": e.train, "evaluation": e.evaluation, "real_subset": e.real_subset });
    for (grid, sweeps) in [
        (
            "mnist_port.toml",
            &["mnist_port_gamma.toml", "mnist_port_count.toml"][..],
        ),
        (
            "mnist_port_generative.toml",
            &[
                "mnist_port_generative_gamma.toml",
                "mnist_port_generative_count.toml",
                "mnist_proxy_only.toml",
                "mnist_score_groups.toml",
                "mnist_score_selection.toml",
            ][..],
        ),
    ] {
        let grid = load(grid);
        for sweep in sweeps {
            let other = load(sweep);
            assert_eq!(recipe(&other), recipe(&grid), "{sweep}");
            assert_eq!(
                other.seeds[0], grid.seeds[0],
                "{sweep}: proxies are fitted with the first seed"
            );
        }
    }
}

/// Under certification the grid reports the smoothed classifier's certified accuracy at one radius,
/// writes every run's curve, and refuses an `[evaluation]` that mixes AutoAttack and certification.
#[test]
fn a_certification_grid_writes_certified_curves_and_mixed_evaluations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = "name = \"tiny-smooth\"\nreal_subset = 200\nproxies = [{ kind = \"gaussian\" }]\nsynthetic_counts = [300]\ngammas = [0.4]\nseeds = [0]\n\
         [train]\nmodel = \"cnn2\"\nepochs = 1\nbatch_size = 50\n[train.objective]\nkind = \"gaussian-augmentation\"\nsigma = 0.25\n[train.lr]\nbase = 0.05\n";
    let certify = "[evaluation]\nlimit = 8\ncertified_radius = 0.25\n[evaluation.certify]\nsigma = 0.25\nn0 = 20\nn = 200\nbatch = 100\n";
    let runs = run(&format!("{body}{certify}"), dir.path());
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines.len(), 3, "{runs}");
    for row in &lines[1..] {
        let fields: Vec<f64> = row.split(',').skip(5).map(|v| v.parse().unwrap()).collect();
        let (clean, certified) = (fields[0], fields[1]);
        assert!((0.0..=1.0).contains(&clean) && certified <= clean, "{row}");
        // Eight test points: accuracies are multiples of 1/8.
        assert_eq!((clean * 8.0).fract(), 0.0, "{row}");
    }
    let out = dir.path().join("out");
    let curves = std::fs::read_to_string(out.join("certified.csv")).unwrap();
    assert!(
        curves.starts_with("arm,seed,radius,certified_accuracy\nbaseline,0,0.0,"),
        "{curves}"
    );
    assert_eq!(curves.lines().count(), 1 + 2 * 201, "two runs of 201 radii");
    for f in [
        "certified_accuracy.png",
        "certified_accuracy.svg",
        "models/baseline-s0/certify/samples.csv",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("certified accuracy of the smoothed classifier"),
        "{report}"
    );
    // The same config again reuses both runs and their curves.
    assert_eq!(run(&format!("{body}{certify}"), dir.path()), runs);
    assert_eq!(
        std::fs::read_to_string(out.join("certified.csv")).unwrap(),
        curves
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{body}[evaluation]\nautoattack = \"fast\"\nlimit = 8\ncertified_radius = 0.25\n[evaluation.certify]\nsigma = 0.25\n")).unwrap();
    let o = binary()
        .args([
            "experiment",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("bad").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("evaluation"),
        "{err}"
    );
    std::fs::write(&bad, format!("{body}[evaluation]\ncertified_radius = 0.25\n[evaluation.certify]\nsigma = 0.25\nalpha = 2.0\n")).unwrap();
    let o = binary()
        .args([
            "experiment",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("bad").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("evaluation.certify.alpha"), "{err}");
}

/// With `[bounds]`, every PORT run gets the bound-against-observed report against proxy images
/// it never trained on, the grid collects them in `bounds.csv`, and a second run reuses them.
#[test]
fn an_experiment_with_bounds_reports_them_for_every_port_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("[0.4]").replace("seeds = [0]", "seeds = [0]\nbaseline = false")
        + "[bounds]\npoints = 100\nmax_radius = 3.0\not_per_class = 10\not_repeats = 1\n";
    let runs = run(&text, dir.path());
    assert_eq!(runs.lines().count(), 2, "{runs}");
    let out = dir.path().join("out");
    let bounds = std::fs::read_to_string(out.join("bounds.csv")).unwrap();
    let lines: Vec<&str> = bounds.lines().collect();
    assert_eq!(
        lines[0],
        "arm,seed,proxy_held_out,rob_real,rob_proxy,delta_rob,delta_rob_half_width,ot_w1,gaussian_w2_pixels,gaussian_w2_features,theorem1_consistent,theorem6_observed,theorem6_bound"
    );
    assert_eq!(lines.len(), 2, "{bounds}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        &fields[..3],
        ["port-gaussian-g0.4-n300", "0", "true"],
        "{bounds}"
    );
    let value = |i: usize| fields[i].parse::<f64>().unwrap();
    let (rob_real, rob_proxy, delta) = (value(3), value(4), value(5));
    assert!((rob_real - rob_proxy - delta).abs() < 1e-9, "{bounds}");
    assert!(
        value(7) > 0.0 && value(8) > 0.0 && value(9) > 0.0,
        "{bounds}"
    );
    // Theorem 6 on the γ = 0.4 mixture: both sides scaled by 1 − γ.
    assert!((value(11) - 0.6 * delta.abs()).abs() < 1e-9, "{bounds}");
    assert!((value(12) - 0.6 * value(7)).abs() < 1e-9, "{bounds}");
    let report = out.join("models/port-gaussian-g0.4-n300-s0/bounds");
    for file in ["bounds.json", "report.md", "samples.csv"] {
        assert!(report.join(file).exists(), "{file}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("bounds.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["settings"]["autoattack_norm"], "linf",
        "AutoAttack under the experiment's threat: {summary}"
    );
    assert!(summary["proxy"]["autoattack_robust_accuracy"].is_number());
    let held_out = proxy_set_len(&out) - 100;
    assert_eq!(
        held_out, 300,
        "the generated set is 100 images longer than any arm uses"
    );
    assert_eq!(run(&text, dir.path()), runs);
    assert_eq!(
        std::fs::read_to_string(out.join("bounds.csv")).unwrap(),
        bounds
    );
}

fn proxy_set_len(out: &Path) -> usize {
    proxyrobust::data::read_image_npz(&out.join("proxies/gaussian.npz"), 10)
        .unwrap()
        .len()
}

/// The grid split into cells: `--list` names them, `--jobs 2` runs them as separate processes and
/// merges into the rows and summary a sequential run writes (training times aside), `--merge`
/// refuses while cells are unfinished, and `--slurm` writes a job array with one task per cell.
#[test]
fn cells_run_apart_merge_into_the_sequential_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grid.toml");
    std::fs::write(
        &file,
        config("[0.4]").replace("seeds = [0]", "seeds = [0, 1]")
            + "[slurm]\ntime = \"02:00:00\"\ngpus_per_task = 0\n",
    )
    .unwrap();
    let experiment = |out: &str, flags: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "experiment",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend(flags);
        binary().args(&args).output().unwrap()
    };
    let listed = experiment("listed", &["--list"]);
    assert!(listed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [
            "0\tbaseline-s0",
            "1\tport-gaussian-g0.4-n300-s0",
            "2\tbaseline-s1",
            "3\tport-gaussian-g0.4-n300-s1"
        ]
    );
    assert!(!dir.path().join("listed").exists(), "--list writes nothing");

    assert!(experiment("sequential", &[]).status.success());
    let parallel = experiment("parallel", &["--jobs", "2"]);
    assert!(
        parallel.status.success(),
        "{}",
        String::from_utf8_lossy(&parallel.stderr)
    );
    let without_time = |out: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(out).join("runs.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(without_time("parallel"), without_time("sequential"));
    assert_eq!(without_time("parallel").len(), 5);
    let read =
        |out: &str, name: &str| std::fs::read_to_string(dir.path().join(out).join(name)).unwrap();
    assert_eq!(
        read("parallel", "summary.csv"),
        read("sequential", "summary.csv")
    );
    assert!(dir.path().join("parallel/report.md").exists());

    let one = experiment("cells", &["--cell", "port-gaussian-g0.4-n300-s1"]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let merge = experiment("cells", &["--merge"]);
    let err = String::from_utf8_lossy(&merge.stderr);
    assert_eq!(merge.status.code(), Some(2), "{err}");
    assert!(
        err.lines().count() == 1
            && err.contains("3 of 4 are not: baseline-s0, port-gaussian-g0.4-n300-s0, baseline-s1"),
        "{err}"
    );
    let bad = experiment("cells", &["--cell", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--cell"));

    assert!(experiment("cells", &["--slurm"]).status.success());
    let array = read("cells", "slurm/cells.sbatch");
    assert!(
        array.contains("#SBATCH --array=0-3")
            && array.contains("#SBATCH --time=02:00:00")
            && !array.contains("--gpus-per-task")
            && array.contains("--cell \"$SLURM_ARRAY_TASK_ID\""),
        "{array}"
    );
    assert!(read("cells", "slurm/merge.sbatch").contains("--merge"));
    assert!(read("cells", "slurm/submit.sh").contains("--dependency=afterok:"));
}

/// A proxy set made elsewhere (`proxy_sets`) is keyed by its contents: rewriting the file with
/// other images of the same count — the same byte size — retrains the runs that use it and only
/// those, and an unchanged file retrains nothing.
#[test]
fn a_rewritten_proxy_set_of_the_same_size_retrains_its_runs() {
    use proxyrobust::data::{ImageDataset, write_image_npz};
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.npz");
    let write_set = |shift: i64| {
        let labels: Vec<i64> = (0..300).map(|i| (i + shift) % 10).collect();
        let pixels: Vec<u8> = (0..300 * 784)
            .map(|i| ((i * 7 + shift as usize) % 256) as u8)
            .collect();
        write_image_npz(
            &set,
            &ImageDataset::new(pixels, labels, [28, 28, 1], 10).unwrap(),
        )
        .unwrap();
    };
    write_set(0);
    let size = std::fs::metadata(&set).unwrap().len();
    let text = config("[0.4]").replace(
        "proxies = [{ kind = \"gaussian\" }]",
        &format!(
            "proxy_sets = [{{ name = \"set\", npz = {:?} }}]",
            set.to_str().unwrap()
        ),
    );
    let first = run(&text, dir.path());
    assert!(
        first.contains("\nport-set-g0.4-n300,set,0.4,300,0,"),
        "{first}"
    );
    let (baseline, port) = (
        modified(dir.path(), "baseline-s0"),
        modified(dir.path(), "port-set-g0.4-n300-s0"),
    );
    run(&text, dir.path());
    assert_eq!(modified(dir.path(), "port-set-g0.4-n300-s0"), port);

    write_set(1);
    assert_eq!(
        std::fs::metadata(&set).unwrap().len(),
        size,
        "same byte size"
    );
    run(&text, dir.path());
    assert_eq!(modified(dir.path(), "baseline-s0"), baseline);
    assert_ne!(modified(dir.path(), "port-set-g0.4-n300-s0"), port);
}
