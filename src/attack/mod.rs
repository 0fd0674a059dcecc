//! Adversarial attacks on tch models (feature `torch`), one file per attack (as AutoAttack is
//! organised) over a shared threat model ([`threat`]): PGD and FGSM (Madry et al., 2018;
//! Goodfellow et al., 2015), APGD-CE/APGD-T, FAB-T and Square (Croce & Hein, 2020; Andriushchenko
//! et al., 2020), the AutoAttack orchestrator, and minimal adversarial distances for the average
//! robustness of Definition 1.

pub mod apgd;
pub mod autoattack;
pub mod distance;
pub mod fab;
pub mod pgd;
pub mod square;
pub mod threat;

pub use apgd::{Apgd, ApgdLoss};
pub use autoattack::{Attack, Version, chain};
pub use distance::{Distances, MinimalDistance};
pub use fab::{Fab, FabTarget};
pub use pgd::Pgd;
pub use square::Square;
pub use threat::Threat;
