//! proxyrobust: proxy distributions and adversarial robustness.
//!
//! A toolkit around Sehwag et al., "Robust Learning Meets Generative Models: Can Proxy
//! Distributions Improve Adversarial Robustness?" (ICLR 2022). The theory core checks the
//! paper's bounds exactly where they can be computed; every numeric path is f64 and refuses
//! invalid input with an [`Error`] that names what was wrong.

pub mod config;
pub mod error;
pub mod model;
pub mod stats;
pub mod theory;

pub use error::{Error, Result};
#[cfg(feature = "torch")]
pub mod arc;
#[cfg(feature = "torch")]
pub mod attack;
#[cfg(feature = "torch")]
pub mod bounds;
pub mod data;
#[cfg(feature = "torch")]
pub mod distributed;
#[cfg(feature = "torch")]
pub mod eval;
#[cfg(feature = "torch")]
pub mod experiment;
#[cfg(feature = "torch")]
pub mod host;
pub mod npz;
pub mod proxy;
#[cfg(feature = "torch")]
pub mod pseudo_label;
pub mod report;
pub mod smoothing;
pub mod sweep;
pub mod train;
