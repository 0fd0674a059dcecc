//! What a sweep records about estimated (rather than exact) robustness: the unit box a network
//! sees its inputs in, how far its two minimal-distance attacks disagree, and how they compare
//! with exact distances where those are known.

use faer::Mat;
use serde::Serialize;

/// The smallest and largest coordinate over sets of points (empty: no points yet).
#[derive(Clone, Copy, Debug, Default)]
pub struct Extent {
    pub range: Option<(f64, f64)>,
}

impl Extent {
    /// Widens the extent to every entry of `x`.
    pub fn include(&mut self, x: &Mat<f64>) {
        for j in 0..x.ncols() {
            for v in x.col(j).iter() {
                self.range = Some(match self.range {
                    None => (*v, *v),
                    Some((lo, hi)) => (lo.min(*v), hi.max(*v)),
                });
            }
        }
    }
}

/// The two attacks' agreement on one set of points: mean |FAB − bisection| over the points both
/// broke, and the points neither broke within the largest radius.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct AttackSpread {
    pub disagreement: f64,
    pub unbroken: usize,
    pub points: usize,
}

/// The minimal-distance estimate against exact distances to a linear classifier's boundary, on
/// the points it classifies correctly: relative gaps (estimate − exact)/exact, which are ≥ 0 up to
/// the bisection's resolution, since both attacks give upper bounds.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize)]
pub struct Calibration {
    pub points: usize,
    pub mean_exact: f64,
    pub mean_relative_gap: f64,
    pub max_relative_gap: f64,
    pub fab_relative_gap: f64,
    pub bisection_relative_gap: f64,
    pub unbroken: usize,
}
