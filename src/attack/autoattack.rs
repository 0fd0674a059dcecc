//! AutoAttack (Croce & Hein, 2020): a fixed chain of parameter-free attacks, each run only on the
//! points the previous ones left robust, with the robust accuracy reported after each.
//! "standard": APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries) — how the
//! paper reports every robust accuracy. "fast": APGD-CE and APGD-T, the seed repository's
//! evaluation. Also every single attack behind one [`Attack`] type so callers chain them alike.

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tch::nn::ModuleT;

use super::threat::{Threat, misclassified};
use super::{Apgd, ApgdLoss, Fab, FabTarget, Pgd, Square};

/// Which chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    Standard,
    Fast,
}

/// One attack of a chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    Pgd(Pgd),
    Apgd(Apgd),
    Fab(Fab),
    Square(Square),
}

impl Attack {
    /// The name AutoAttack prints: `apgd-ce`, `apgd-t`, `fab-t`, `square`, or `pgd-K`.
    pub fn name(&self) -> String {
        match self {
            Attack::Pgd(p) if p.steps == 1 && !p.random_start => "fgsm".into(),
            Attack::Pgd(p) => format!("pgd-{}", p.steps),
            Attack::Apgd(a) => match a.loss {
                ApgdLoss::CrossEntropy => "apgd-ce".into(),
                ApgdLoss::Dlr => "apgd-dlr".into(),
                ApgdLoss::TargetedDlr { .. } => "apgd-t".into(),
            },
            Attack::Fab(f) => {
                if matches!(f.target, FabTarget::Targeted { .. }) {
                    "fab-t".into()
                } else {
                    "fab".into()
                }
            }
            Attack::Square(_) => "square".into(),
        }
    }

    /// Adversarial examples and the mask of points they misclassify.
    pub fn perturb<M: ModuleT + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        y: &Tensor,
    ) -> (Tensor, Tensor) {
        match self {
            Attack::Pgd(p) => {
                let adversarial = p.perturb(model, x, y, false);
                let broken =
                    tch::no_grad(|| misclassified(&model.forward_t(&adversarial, false), y));
                (adversarial, broken)
            }
            Attack::Apgd(a) => a.perturb(model, x, y),
            Attack::Fab(f) => f.perturb(model, x, y),
            Attack::Square(s) => s.perturb(model, x, y),
        }
    }
}

/// The attacks of `version` under `threat`, with the published settings.
pub fn chain(version: Version, threat: Threat) -> Vec<Attack> {
    let apgd = |loss| {
        Attack::Apgd(Apgd {
            threat,
            loss,
            iterations: 100,
            restarts: 1,
        })
    };
    let mut attacks = vec![
        apgd(ApgdLoss::CrossEntropy),
        apgd(ApgdLoss::TargetedDlr { targets: 9 }),
    ];
    if version == Version::Standard {
        attacks.push(Attack::Fab(Fab {
            threat,
            target: FabTarget::Targeted { targets: 9 },
            iterations: 100,
            restarts: 1,
        }));
        attacks.push(Attack::Square(Square {
            threat,
            queries: 5000,
            p_init: 0.8,
            restarts: 1,
        }));
    }
    attacks
}
