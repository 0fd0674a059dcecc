//! Ranking proxy distributions (Tables 6 and 10): which proximity metric orders a set of proxies
//! as the robustness they transfer does. The ground truth is the robust accuracy on the real test
//! split of a classifier adversarially trained on each proxy's samples alone (an experiment grid
//! with `gammas = [0.0]`, read from its `runs.csv`); beside it the classifier-feature FID, the
//! nearest-real-image distance and the classifier Inception score of `quality`, and ARC of
//! `arc`. Each is ranked (1 = best, ties share their mean rank), and each metric's mean absolute
//! ranking difference to the ground truth is the paper's measure of how well it predicts it.
//! Optionally the clean accuracy transferred under natural training (Table 10's first column),
//! from a second grid's `runs.csv`; and, for proxies with a `bounds` report of a classifier
//! trained on them, the proximity sandwich (no table of the paper's): 4·ARC, a lower estimate of
//! cwd (Theorem 2), beside the observed transfer gap |ΔRob| that cwd bounds (Theorem 1) and the
//! exact-OT W1 of class-conditional subsamples, an upper estimate of cwd. Figure 3 across the
//! proxies: each one's seed-mean Racc_ε from its ARC summary, one line per proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Validate;
use crate::error::{Error, Result};
use crate::report::{self, Axes, Labels, Series};

/// `rank CONFIG.toml`: where each proxy's measurements are.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingConfig {
    /// `runs.csv` of the grid that trained on each proxy alone; its `proxy` column names the
    /// proxies, `robust_accuracy` is averaged over each proxy's seeds.
    pub ground_truth: PathBuf,
    /// `runs.csv` of the same grid under natural training: its `clean_accuracy` per proxy.
    #[serde(default)]
    pub transfer: Option<PathBuf>,
    pub proxies: Vec<ProxyMeasurements>,
}

/// One proxy's name (as in the grids' `proxy` column), its `quality.json` and ARC
/// `summary.json`, and optionally the `bounds.json` of a classifier trained on it (its `norm`
/// should be the ARC's, so that 4·ARC and |ΔRob| are in one unit).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyMeasurements {
    pub name: String,
    pub quality: PathBuf,
    pub arc: PathBuf,
    #[serde(default)]
    pub bounds: Option<PathBuf>,
}

impl Validate for RankingConfig {
    fn validate(&self) -> Result<()> {
        if self.proxies.len() < 2 {
            return Err(Error::invalid(
                "proxies",
                format!("at least two proxies to rank, got {}", self.proxies.len()),
            ));
        }
        let mut names: Vec<&str> = self.proxies.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                "proxies",
                format!("distinct names, got {:?} twice", w[0]),
            ));
        }
        Ok(())
    }
}

/// A metric and whether a larger value ranks a proxy higher.
struct Metric {
    name: &'static str,
    higher_is_better: bool,
    values: Vec<f64>,
}

/// One row of `ranking.csv`: a proxy's values and ranks.
#[derive(Clone, Debug, Serialize)]
pub struct RankingRow {
    pub proxy: String,
    pub robust_accuracy: f64,
    pub robust_rank: f64,
    /// Clean accuracy under natural training on the proxy alone (empty without `transfer`).
    pub transferred_clean_accuracy: Option<f64>,
    pub fid: f64,
    pub fid_rank: f64,
    pub nearest_real_distance: f64,
    pub nearest_real_rank: f64,
    pub inception_score: f64,
    pub inception_rank: f64,
    pub arc: f64,
    pub arc_rank: f64,
}

/// One row of `sandwich.csv`: a proxy's estimates of cwd from below and above and the transfer
/// gap between them, in the `bounds` report's norm.
#[derive(Clone, Debug, Serialize)]
pub struct SandwichRow {
    pub proxy: String,
    pub norm: String,
    /// 4·ARC (Theorem 2: at most cwd).
    pub four_arc: f64,
    /// `Rob(h, real) − Rob(h, proxy)` of the classifier trained on the proxy (Theorem 1: its
    /// absolute value is at most cwd), and its 95% half-width.
    pub delta_rob: f64,
    pub delta_rob_half_width: f64,
    /// Exact-OT W1 of class-conditional subsamples (at least cwd in expectation).
    pub ot_w1: f64,
}

/// `ranking.json`: the rows, each metric's mean absolute ranking difference to the robust
/// accuracy's ranks, and the sandwich of the proxies with a `bounds` report.
#[derive(Clone, Debug, Serialize)]
pub struct Ranking {
    pub rows: Vec<RankingRow>,
    pub mean_absolute_rank_difference: BTreeMap<String, f64>,
    pub sandwich: Vec<SandwichRow>,
}

impl std::fmt::Display for Ranking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", markdown(self))
    }
}

/// Ranks of `values`, 1 for the best (the largest when `higher_is_better`, else the smallest);
/// tied values share the mean of the ranks they span (`scipy.stats.rankdata`'s "average").
pub fn ranks(values: &[f64], higher_is_better: bool) -> Vec<f64> {
    let key = |v: f64| if higher_is_better { -v } else { v };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| key(values[a]).total_cmp(&key(values[b])));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let tied = 1 + order[start + 1..]
            .iter()
            .take_while(|&&i| values[i] == values[order[start]])
            .count();
        // Positions start..start+tied hold ranks start+1 … start+tied; their mean:
        let shared = start as f64 + (tied as f64 + 1.0) / 2.0;
        for &i in &order[start..start + tied] {
            ranks[i] = shared;
        }
        start += tied;
    }
    ranks
}

/// `(1/n) Σ |a_i − b_i|` over two rankings of the same n proxies (Table 6's last column).
pub fn mean_absolute_rank_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// Reads every measurement named by `config`, ranks the proxies by each metric, and writes
/// `ranking.csv`, `ranking.json`, `ranking.md` and `manifest.json` under `out`.
pub fn run(config: &RankingConfig, out: &Path) -> Result<Ranking> {
    let mut manifest = report::Manifest::new("rank", config, "cpu")?;
    let names: Vec<&str> = config.proxies.iter().map(|p| p.name.as_str()).collect();
    let robust = per_proxy_means(&config.ground_truth, "robust_accuracy", &names)?;
    let transfer = match &config.transfer {
        Some(path) => Some(per_proxy_means(path, "clean_accuracy", &names)?),
        None => None,
    };
    let quality = |field: &str| -> Result<Vec<f64>> {
        config
            .proxies
            .iter()
            .map(|p| json_number(&p.quality, &[field]))
            .collect()
    };
    let metrics = [
        Metric {
            name: "fid",
            higher_is_better: false,
            values: quality("fid")?,
        },
        Metric {
            name: "nearest_real_distance",
            higher_is_better: false,
            values: quality("nearest_real_distance")?,
        },
        Metric {
            name: "inception_score",
            higher_is_better: true,
            values: quality("inception_score")?,
        },
        Metric {
            name: "arc",
            higher_is_better: false,
            values: config
                .proxies
                .iter()
                .map(|p| json_number(&p.arc, &["arc_mean"]))
                .collect::<Result<_>>()?,
        },
    ];
    let checked = std::iter::once(("robust_accuracy", &robust))
        .chain(metrics.iter().map(|m| (m.name, &m.values)));
    for (name, values) in checked {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                name,
                format!(
                    "a finite value for every proxy, got {} for {:?}",
                    values[i], names[i]
                ),
            ));
        }
    }
    let truth = ranks(&robust, true);
    let metric_ranks: Vec<Vec<f64>> = metrics
        .iter()
        .map(|m| ranks(&m.values, m.higher_is_better))
        .collect();
    let rows = (0..names.len())
        .map(|i| RankingRow {
            proxy: names[i].to_string(),
            robust_accuracy: robust[i],
            robust_rank: truth[i],
            transferred_clean_accuracy: transfer.as_ref().map(|t| t[i]),
            fid: metrics[0].values[i],
            fid_rank: metric_ranks[0][i],
            nearest_real_distance: metrics[1].values[i],
            nearest_real_rank: metric_ranks[1][i],
            inception_score: metrics[2].values[i],
            inception_rank: metric_ranks[2][i],
            arc: metrics[3].values[i],
            arc_rank: metric_ranks[3][i],
        })
        .collect();
    let ranking = Ranking {
        rows,
        mean_absolute_rank_difference: metrics
            .iter()
            .zip(&metric_ranks)
            .map(|(m, r)| (m.name.to_string(), mean_absolute_rank_difference(r, &truth)))
            .collect(),
        sandwich: config
            .proxies
            .iter()
            .zip(&metrics[3].values)
            .filter_map(|(p, &arc)| p.bounds.as_ref().map(|b| sandwich_row(&p.name, arc, b)))
            .collect::<Result<_>>()?,
    };
    let curves: Vec<Vec<(f64, f64)>> = config
        .proxies
        .iter()
        .map(|p| arc_curve(&p.arc))
        .collect::<Result<_>>()?;
    report::create_run_dir(out)?;
    report::write_csv(&out.join("ranking.csv"), &ranking.rows)?;
    plot_curves(out, &names, &curves)?;
    let mut files = vec![
        "ranking.csv",
        "ranking.json",
        "ranking.md",
        "robust_discrimination.png",
        "robust_discrimination.svg",
    ];
    if !ranking.sandwich.is_empty() {
        report::write_csv(&out.join("sandwich.csv"), &ranking.sandwich)?;
        files.push("sandwich.csv");
    }
    report::write_json(&out.join("ranking.json"), &ranking)?;
    report::atomic_write(&out.join("ranking.md"), markdown(&ranking).as_bytes())?;
    manifest.write(out, &files)?;
    Ok(ranking)
}

/// A proxy's sandwich row from its ARC and its classifier's `bounds.json` (`delta_rob`, the
/// `ot_w1` entry of `proximity`, `settings.norm`).
fn sandwich_row(proxy: &str, arc: f64, bounds: &Path) -> Result<SandwichRow> {
    let value = read_json(bounds)?;
    let ot_w1 = value
        .get("proximity")
        .and_then(serde_json::Value::as_array)
        .and_then(|entries| entries.iter().find(|e| e["name"] == "ot_w1"))
        .and_then(|e| e["value"].as_f64())
        .ok_or_else(|| Error::file(bounds, "a `proximity` entry `ot_w1` with a number `value`"))?;
    let norm = value
        .pointer("/settings/norm")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::file(bounds, "a string `settings.norm`"))?;
    Ok(SandwichRow {
        proxy: proxy.to_string(),
        norm: norm.to_string(),
        four_arc: 4.0 * arc,
        delta_rob: number_at(&value, bounds, &["delta_rob", "mean"])?,
        delta_rob_half_width: number_at(&value, bounds, &["delta_rob", "half_width"])?,
        ot_w1,
    })
}

/// The mean of `column` over the rows of the grid's `runs.csv` whose `proxy` is each of
/// `names`; a proxy without rows, or with rows of more than one arm, is an error naming the file.
fn per_proxy_means(path: &Path, column: &str, names: &[&str]) -> Result<Vec<f64>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::file(path, format!("cannot read runs.csv: {e}")))?;
    let rows: Vec<BTreeMap<String, String>> = reader
        .deserialize()
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::file(path, format!("not a runs.csv of `experiment`: {e}")))?;
    let field = |row: &BTreeMap<String, String>, key: &str| -> Result<String> {
        row.get(key)
            .cloned()
            .ok_or_else(|| Error::file(path, format!("missing column `{key}`")))
    };
    names
        .iter()
        .map(|name| {
            let (mut arms, mut values) = (Vec::new(), Vec::new());
            for row in &rows {
                if field(row, "proxy")? != *name {
                    continue;
                }
                let arm = field(row, "arm")?;
                if !arms.contains(&arm) {
                    arms.push(arm);
                }
                let text = field(row, column)?;
                values.push(text.parse::<f64>().map_err(|_| {
                    Error::file(path, format!("`{column}`: a number, got {text:?}"))
                })?);
            }
            match arms.len() {
                0 => Err(Error::file(
                    path,
                    format!("no run of proxy {name:?} (the `proxy` column)"),
                )),
                1 => Ok(values.iter().sum::<f64>() / values.len() as f64),
                _ => Err(Error::file(
                    path,
                    format!("one arm per proxy; {name:?} has {}", arms.join(", ")),
                )),
            }
        })
        .collect()
}

/// The seed-mean curve `(ε, Racc_ε)` of an ARC `summary.json` (`epsilons`,
/// `mean_robust_accuracy`).
fn arc_curve(path: &Path) -> Result<Vec<(f64, f64)>> {
    let value = read_json(path)?;
    let numbers = |key: &str| -> Option<Vec<f64>> {
        value
            .get(key)?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_f64)
            .collect()
    };
    match (numbers("epsilons"), numbers("mean_robust_accuracy")) {
        (Some(e), Some(r)) if e.len() == r.len() && !e.is_empty() => {
            Ok(e.into_iter().zip(r).collect())
        }
        _ => Err(Error::file(
            path,
            "`epsilons` and `mean_robust_accuracy`: number arrays of one length",
        )),
    }
}

/// Figure 3 across proxies: `robust_discrimination.{png,svg}`, each proxy's seed-mean Racc_ε.
fn plot_curves(out: &Path, names: &[&str], curves: &[Vec<(f64, f64)>]) -> Result<()> {
    let series: Vec<Series> = names
        .iter()
        .zip(curves)
        .enumerate()
        .map(|(i, (name, points))| Series {
            name,
            points,
            color: report::TAB10[i % report::TAB10.len()],
            line: true,
        })
        .collect();
    report::plot(
        &out.join("robust_discrimination"),
        &Labels {
            title: "Robust discrimination of each proxy from real data (seed mean)",
            x: "ε",
            y: "robust discrimination accuracy",
        },
        &series,
        Axes {
            log: false,
            diagonal: false,
        },
    )
}

/// The JSON document in `path`.
fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not JSON: {e}")))
}

/// The number at the object keys `keys` (outermost first) of the JSON object in `path`.
fn json_number(path: &Path, keys: &[&str]) -> Result<f64> {
    number_at(&read_json(path)?, path, keys)
}

/// The number at the object keys `keys` of `value`, read from `path`.
fn number_at(value: &serde_json::Value, path: &Path, keys: &[&str]) -> Result<f64> {
    keys.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| Error::file(path, format!("a number `{}`", keys.join("."))))
}

/// The ranking as a markdown table (values with their ranks in parentheses) and the mean
/// absolute ranking differences.
fn markdown(ranking: &Ranking) -> String {
    let mut text = String::from(
        "| proxy | robust accuracy (rank) | transferred clean accuracy | FID (rank) | nearest real (rank) | Inception score (rank) | ARC (rank) |\n|---|---|---|---|---|---|---|\n",
    );
    for r in &ranking.rows {
        text.push_str(&format!(
            "| {} | {:.4} ({}) | {} | {:.1} ({}) | {:.3} ({}) | {:.3} ({}) | {:.4} ({}) |\n",
            r.proxy,
            r.robust_accuracy,
            r.robust_rank,
            r.transferred_clean_accuracy
                .map_or("—".into(), |a| format!("{a:.4}")),
            r.fid,
            r.fid_rank,
            r.nearest_real_distance,
            r.nearest_real_rank,
            r.inception_score,
            r.inception_rank,
            r.arc,
            r.arc_rank
        ));
    }
    text.push_str("\nMean absolute ranking difference to the robust accuracy's ranks:\n\n");
    for (metric, d) in &ranking.mean_absolute_rank_difference {
        text.push_str(&format!("- {metric}: {d:.3}\n"));
    }
    if !ranking.sandwich.is_empty() {
        text.push_str(
            "\nProximity sandwich (Theorem 2 puts 4·ARC below cwd, Theorem 1 |ΔRob| of the classifier trained on the proxy, and the exact-OT W1 of subsamples estimates it from above):\n\n| proxy | norm | 4·ARC | \\|ΔRob\\| ± 95% | OT W1 |\n|---|---|---|---|---|\n",
        );
        for r in &ranking.sandwich {
            text.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} ± {:.4} | {:.4} |\n",
                r.proxy,
                r.norm,
                r.four_arc,
                r.delta_rob.abs(),
                r.delta_rob_half_width,
                r.ot_w1
            ));
        }
    }
    text
}
