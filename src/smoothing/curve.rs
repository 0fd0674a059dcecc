//! Certified accuracy against radius (Figure 2, Table 5): the fraction of test points that
//! CERTIFY classifies correctly with a certified ℓ2 radius of at least r (abstentions count as
//! wrong), as locuslab/smoothing's analysis computes it.

use serde::{Deserialize, Serialize};

/// One point of the certified-accuracy curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertifiedPoint {
    pub radius: f64,
    pub certified_accuracy: f64,
}

/// Certified accuracy at each radius of `radii` from per-point `(correct, radius)` pairs, where
/// `radius` is the certified radius of a correct prediction (ignored when `correct` is false).
/// Empty input gives accuracy 0.
pub fn certified_accuracy(points: &[(bool, f64)], radii: &[f64]) -> Vec<CertifiedPoint> {
    radii
        .iter()
        .map(|&r| {
            let certified = points
                .iter()
                .filter(|&&(ok, radius)| ok && radius >= r)
                .count();
            CertifiedPoint {
                radius: r,
                certified_accuracy: if points.is_empty() {
                    0.0
                } else {
                    certified as f64 / points.len() as f64
                },
            }
        })
        .collect()
}
