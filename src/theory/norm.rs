//! The ℓp metrics of the threat models and of optimal-transport ground costs.

use serde::{Deserialize, Serialize};

/// The ℓp metric `d(x, x') = ‖x − x'‖_p` of a threat model or an OT ground cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// ℓ1
    L1,
    /// ℓ2 (Euclidean)
    L2,
    /// ℓ∞
    Linf,
}

impl Norm {
    /// `‖u‖` in this norm.
    pub fn of(self, u: &[f64]) -> f64 {
        match self {
            Norm::L1 => u.iter().map(|v| v.abs()).sum(),
            Norm::L2 => u.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Norm::Linf => u.iter().fold(0.0, |m, v| m.max(v.abs())),
        }
    }

    /// The dual norm: ℓ1 ↔ ℓ∞, ℓ2 ↔ ℓ2.
    pub fn dual(self) -> Norm {
        match self {
            Norm::L1 => Norm::Linf,
            Norm::L2 => Norm::L2,
            Norm::Linf => Norm::L1,
        }
    }

    /// A subgradient of `‖u‖` at `u` (zero at `u = 0`).
    pub fn subgradient(self, u: &[f64]) -> Vec<f64> {
        match self {
            Norm::L1 => u
                .iter()
                .map(|v| if *v == 0.0 { 0.0 } else { v.signum() })
                .collect(),
            Norm::L2 => {
                let n = Norm::L2.of(u);
                u.iter()
                    .map(|v| if n > 0.0 { v / n } else { 0.0 })
                    .collect()
            }
            Norm::Linf => {
                let mut g = vec![0.0; u.len()];
                if let Some((k, v)) = u
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .filter(|(_, v)| **v != 0.0)
                {
                    g[k] = v.signum();
                }
                g
            }
        }
    }

    /// The factor `c` with `‖·‖ ≤ c‖·‖2` in dimension `d`: 1 for ℓ2 and ℓ∞, `√d` for ℓ1.
    ///
    /// A Euclidean W2 bound on the distribution shift therefore bounds ℓp robustness after
    /// multiplication by this factor (Theorem 1 with `d = ‖·‖_p`, `W1 ≤ W2`).
    pub fn euclidean_domination_factor(self, d: usize) -> f64 {
        match self {
            Norm::L1 => (d as f64).sqrt(),
            Norm::L2 | Norm::Linf => 1.0,
        }
    }

    /// Lower-case name, as in configs and CSV.
    pub fn name(self) -> &'static str {
        match self {
            Norm::L1 => "l1",
            Norm::L2 => "l2",
            Norm::Linf => "linf",
        }
    }
}
