//! Ranking proxies (Tables 6 and 10, `proxy::ranking`): ranks against scipy's `rankdata`, and
//! `rank` end to end on hand-made grid, quality and ARC outputs whose ranks and mean absolute
//! ranking differences are worked out by hand; bad inputs get one line naming the file.

use std::path::Path;

use proxyrobust::proxy::ranking::{mean_absolute_rank_difference, ranks};

mod common;
use common::{binary, refused};

/// scipy 1.17.1: `scipy.stats.rankdata([3, 1, 4, 1, 5])` → [3, 1.5, 4, 1.5, 5] (smallest first),
/// `rankdata([-3, -1, -4, -1, -5])` → [3, 4.5, 2, 4.5, 1] (largest first), `rankdata([0.2] * 3)`
/// → [2, 2, 2].
#[test]
fn ranks_match_scipy_rankdata_with_ties_averaged() {
    let values = [3.0, 1.0, 4.0, 1.0, 5.0];
    assert_eq!(ranks(&values, false), vec![3.0, 1.5, 4.0, 1.5, 5.0]);
    assert_eq!(ranks(&values, true), vec![3.0, 4.5, 2.0, 4.5, 1.0]);
    assert_eq!(ranks(&[0.2; 3], true), vec![2.0; 3]);
    assert_eq!(
        mean_absolute_rank_difference(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]),
        4.0 / 3.0
    );
}

const RUNS: &str = "arm,proxy,gamma,synthetic_images,seed,clean_accuracy,robust_accuracy,train_seconds\n\
    baseline,none,,0,0,0.97,0.75,10\n\
    port-a-g0-n100,a,0,100,0,0.90,0.60,1\n\
    port-a-g0-n100,a,0,100,1,0.92,0.70,1\n\
    port-b-g0-n100,b,0,100,0,0.95,0.80,1\n\
    port-c-g0-n100,c,0,100,0,0.80,0.50,1\n\
    port-d-g0-n100,d,0,100,0,0.70,0.40,1\n";

/// Four proxies with robust accuracies a 0.65 (mean of two seeds), b 0.80, c 0.50, d 0.40
/// (ranks 2, 1, 3, 4) and, per proxy, (FID, nearest real, Inception score, ARC).
fn write_inputs(dir: &Path, quality: &[(&str, f64, f64, f64, f64)]) -> String {
    std::fs::write(dir.join("runs.csv"), RUNS).unwrap();
    let mut config = format!(
        "ground_truth = {:?}\ntransfer = {:?}\n",
        dir.join("runs.csv"),
        dir.join("runs.csv")
    );
    for &(name, fid, nearest, inception, arc) in quality {
        let q = dir.join(format!("{name}-quality.json"));
        let a = dir.join(format!("{name}-arc.json"));
        std::fs::write(
            &q,
            format!(
                "{{\"fid\": {fid}, \"nearest_real_distance\": {nearest}, \"inception_score\": {inception}}}"
            ),
        )
        .unwrap();
        std::fs::write(
            &a,
            format!(
                "{{\"arc_mean\": {arc}, \"arc_std\": 0.001, \"epsilons\": [0.0, 0.1], \"mean_robust_accuracy\": [0.9, {}]}}",
                0.5 + arc
            ),
        )
        .unwrap();
        config.push_str(&format!(
            "[[proxies]]\nname = {name:?}\nquality = {q:?}\narc = {a:?}\n"
        ));
    }
    config
}

const QUALITY: [(&str, f64, f64, f64, f64); 4] = [
    ("a", 100.0, 1.0, 9.0, 0.02),
    ("b", 50.0, 5.0, 9.5, 0.01),
    ("c", 300.0, 5.0, 8.0, 0.05),
    ("d", 200.0, 6.0, 7.0, 0.04),
];

/// FID ranks 2, 1, 4, 3 (|Δ| 0, 0, 1, 1: 0.5); nearest-real ranks 1, 2.5, 2.5, 4 (|Δ| 1, 1.5,
/// 0.5, 0: 0.75); Inception ranks 2, 1, 3, 4 (0); ARC ranks 2, 1, 4, 3 (0.5).
#[test]
fn rank_writes_the_table_and_each_metrics_mean_rank_difference() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rank.toml");
    std::fs::write(&config, write_inputs(dir.path(), &QUALITY)).unwrap();
    let out = dir.path().join("out");
    let o = binary()
        .args([
            "rank",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ranking: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let differences = &ranking["mean_absolute_rank_difference"];
    for (metric, expected) in [
        ("fid", 0.5),
        ("nearest_real_distance", 0.75),
        ("inception_score", 0.0),
        ("arc", 0.5),
    ] {
        assert_eq!(differences[metric].as_f64(), Some(expected), "{metric}");
    }
    let a = &ranking["rows"][0];
    assert_eq!(a["proxy"], "a");
    assert!((a["robust_accuracy"].as_f64().unwrap() - 0.65).abs() < 1e-12);
    assert!((a["transferred_clean_accuracy"].as_f64().unwrap() - 0.91).abs() < 1e-12);
    assert_eq!(a["robust_rank"].as_f64(), Some(2.0));
    assert_eq!(ranking["rows"][2]["nearest_real_rank"].as_f64(), Some(2.5));
    let csv = std::fs::read_to_string(out.join("ranking.csv")).unwrap();
    assert!(csv.starts_with("proxy,robust_accuracy,robust_rank,transferred_clean_accuracy,fid,fid_rank,nearest_real_distance,nearest_real_rank,inception_score,inception_rank,arc,arc_rank\n"), "{csv}");
    assert_eq!(csv.lines().count(), 5);
    for file in [
        "ranking.json",
        "ranking.md",
        "manifest.json",
        "robust_discrimination.png",
        "robust_discrimination.svg",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    assert_eq!(ranking["sandwich"].as_array().map(Vec::len), Some(0));
    assert!(!out.join("sandwich.csv").exists());
}

/// `rank CONFIG --out OUT`.
fn rank_args<'a>(config: &'a Path, out: &'a Path) -> [&'a str; 4] {
    [
        "rank",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
}

/// A `bounds.json` as the `bounds` command writes it, reduced to what the sandwich reads.
fn bounds_json(dir: &Path, name: &str, delta: f64, half_width: f64, ot: f64) -> std::path::PathBuf {
    let path = dir.join(format!("{name}-bounds.json"));
    std::fs::write(
        &path,
        format!(
            "{{\"delta_rob\": {{\"mean\": {delta}, \"half_width\": {half_width}}}, \"settings\": {{\"norm\": \"linf\"}}, \
             \"proximity\": [{{\"name\": \"gaussian_w2_pixels\", \"value\": 9.0}}, {{\"name\": \"ot_w1\", \"value\": {ot}}}]}}"
        ),
    )
    .unwrap();
    path
}

/// Proxies with a `bounds` report get a sandwich row: 4·ARC from the ARC summary, ΔRob and the
/// OT estimate from the report, in the report's norm; the others none.
#[test]
fn bounds_reports_add_the_proximity_sandwich() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = write_inputs(dir.path(), &QUALITY);
    let a = bounds_json(dir.path(), "a", -0.03, 0.01, 1.5);
    text = text.replace("name = \"a\"\n", &format!("name = \"a\"\nbounds = {a:?}\n"));
    let config = dir.path().join("rank.toml");
    std::fs::write(&config, &text).unwrap();
    let out = dir.path().join("out");
    let args = rank_args(&config, &out);
    let o = binary().args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("sandwich.csv")).unwrap();
    assert_eq!(
        csv,
        "proxy,norm,four_arc,delta_rob,delta_rob_half_width,ot_w1\na,linf,0.08,-0.03,0.01,1.5\n"
    );
    let md = std::fs::read_to_string(out.join("ranking.md")).unwrap();
    assert!(
        md.contains("| a | linf | 0.0800 | 0.0300 ± 0.0100 | 1.5000 |"),
        "{md}"
    );
    // A report without the OT estimate is refused naming it.
    std::fs::write(&a, "{\"delta_rob\": {\"mean\": 0.1, \"half_width\": 0.1}, \"settings\": {\"norm\": \"l2\"}, \"proximity\": []}").unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    refused(&args, "a-bounds.json: a `proximity` entry `ot_w1`");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn bad_ranking_inputs_get_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rank.toml");
    let out = dir.path().join("out");
    let args = rank_args(&config, &out);
    // A proxy the grid never trained on.
    let mut quality = QUALITY.to_vec();
    quality.push(("e", 1.0, 1.0, 1.0, 0.1));
    std::fs::write(&config, write_inputs(dir.path(), &quality)).unwrap();
    refused(&args, "no run of proxy \"e\"");
    // A quality.json without the Inception score.
    let text = write_inputs(dir.path(), &QUALITY);
    std::fs::write(dir.path().join("b-quality.json"), "{\"fid\": 1.0}").unwrap();
    std::fs::write(&config, &text).unwrap();
    refused(&args, "b-quality.json: a number `nearest_real_distance`");
    // One proxy under two arms of the grid.
    std::fs::write(&config, write_inputs(dir.path(), &QUALITY)).unwrap();
    std::fs::write(
        dir.path().join("runs.csv"),
        format!("{RUNS}port-a-g0.4-n100,a,0.4,100,0,0.9,0.7,1\n"),
    )
    .unwrap();
    refused(&args, "one arm per proxy");
    // An ARC summary without its curve.
    std::fs::write(&config, write_inputs(dir.path(), &QUALITY)).unwrap();
    std::fs::write(dir.path().join("c-arc.json"), "{\"arc_mean\": 0.05}").unwrap();
    refused(&args, "c-arc.json: `epsilons` and `mean_robust_accuracy`");
    // One proxy only.
    std::fs::write(&config, write_inputs(dir.path(), &QUALITY[..1])).unwrap();
    refused(&args, "at least two proxies");
    assert!(!out.exists(), "nothing written");
}

/// The MNIST ranking's configs (scripts/proxy-ranking.sh) parse and validate: the two proxy-only
/// grids, the ARC config (two seeds, the ladder stepping by 0.01 from ε = 0) and the ranking over
/// six proxies.
#[cfg(feature = "torch")]
#[test]
fn the_mnist_ranking_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for grid in ["mnist_proxy_only.toml", "mnist_proxy_only_natural.toml"] {
        let e = proxyrobust::experiment::PortExperiment::load(&root.join(grid)).unwrap();
        assert_eq!((e.gammas.clone(), e.seeds.len()), (vec![0.0], 3), "{grid}");
    }
    let arc: proxyrobust::arc::ArcConfig =
        proxyrobust::config::load(&root.join("mnist_arc.toml")).unwrap();
    assert_eq!(arc.seeds.len(), 2);
    assert_eq!(arc.epsilons[..3], [0.0, 0.01, 0.02]);
    let ranking: proxyrobust::proxy::ranking::RankingConfig =
        proxyrobust::config::load(&root.join("mnist_ranking.toml")).unwrap();
    assert_eq!(ranking.proxies.len(), 6);
}
