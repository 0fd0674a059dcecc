//! Adversarial attacks on tch models (feature `torch`). So far: PGD (Madry et al., 2018), the
//! attack of PGD adversarial training (paper Section 2.3). APGD, FAB, Square and the AutoAttack
//! orchestrator are issue 5.

pub mod pgd;

pub use pgd::Pgd;
