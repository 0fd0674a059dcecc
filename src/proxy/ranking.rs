//! Ranking proxy distributions (Tables 6 and 10): which proximity metric orders a set of proxies
//! as the robustness they transfer does. The ground truth is the robust accuracy on the real test
//! split of a classifier adversarially trained on each proxy's samples alone (an experiment grid
//! with `gammas = [0.0]`, read from its `runs.csv`); beside it the classifier-feature FID, the
//! nearest-real-image distance and the classifier Inception score of `quality`, and ARC of
//! `arc`. Each is ranked (1 = best, ties share their mean rank), and each metric's mean absolute
//! ranking difference to the ground truth is the paper's measure of how well it predicts it.
//! Optionally the clean accuracy transferred under natural training (Table 10's first column),
//! from a second grid's `runs.csv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Validate;
use crate::error::{Error, Result};
use crate::report;

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

/// One proxy's name (as in the grids' `proxy` column) and its `quality.json` and ARC
/// `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyMeasurements {
    pub name: String,
    pub quality: PathBuf,
    pub arc: PathBuf,
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

/// `ranking.json`: the rows and each metric's mean absolute ranking difference to the robust
/// accuracy's ranks.
#[derive(Clone, Debug, Serialize)]
pub struct Ranking {
    pub rows: Vec<RankingRow>,
    pub mean_absolute_rank_difference: BTreeMap<String, f64>,
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
            .map(|p| json_number(&p.quality, field))
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
                .map(|p| json_number(&p.arc, "arc_mean"))
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
    };
    report::create_run_dir(out)?;
    report::write_csv(&out.join("ranking.csv"), &ranking.rows)?;
    report::write_json(&out.join("ranking.json"), &ranking)?;
    report::atomic_write(&out.join("ranking.md"), markdown(&ranking).as_bytes())?;
    manifest.write(out, &["ranking.csv", "ranking.json", "ranking.md"])?;
    Ok(ranking)
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

/// The number `field` of the JSON object in `path`.
fn json_number(path: &Path, field: &str) -> Result<f64> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not JSON: {e}")))?;
    value
        .get(field)
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| Error::file(path, format!("a number `{field}`")))
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
    text
}
