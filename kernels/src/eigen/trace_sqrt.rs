//! `Σ √λᵢ` of a symmetric positive definite tridiagonal matrix `T` without its eigenvalues: the
//! trace term of W2 needs only this sum, and it is an integral of `T`'s Stieltjes transform,
//! which a tridiagonal matrix gives in O(n) per point.
//!
//! For `λ > 0`, `(2/π) ∫₀^∞ λ/(λ + t²) dt = √λ`; with `t = eᵘ` the integrand is
//! `(√λ/2) sech(u − ½ ln λ)`. Summed over the eigenvalues,
//!
//! ```text
//! Σ √λᵢ = (2/π) ∫ eᵘ f(e^{2u}) du,   f(s) = Σ λᵢ/(λᵢ + s) = tr T (T + s I)⁻¹,
//! ```
//!
//! and the trapezoidal rule with step h on this line is exponentially accurate: for each
//! eigenvalue, whatever the grid's offset, its relative error is at most
//! `2 Σₘ sech(π² m/h) ≈ 4 e^{−π²/h}` (the Fourier series of a sampled sech), so
//! [`STEP`] = 0.28 gives 2e-15. The grid stops [`TAIL`] beyond the largest and smallest
//! `½ ln λ` that matter (the sech tails left out are below 1e-15 relative): above, at half the
//! log of a Gershgorin bound; below, at half the log of a lower bound on `λ_min` found by
//! inertia (the pivots of `T − x I` at a few shifts x), but never below `½ ln δ`: eigenvalues
//! under `δ = (1e-15 √max dᵢ / n)²` add less than 1e-15 relative to the sum (which is at least
//! `√λ_max ≥ √max dᵢ`). About 270 points when `λ_max/λ_min` is 10³–10⁴, as in the W2 benchmark.
//!
//! At each point, `f(s)` comes from the pivots `Dᵢ` of `T + s I = L D Lᵀ` and their derivatives
//! in s: `tr (T + s I)⁻¹ = Σ Dᵢ'/Dᵢ`, so `f(s) = n − s Σ Dᵢ'/Dᵢ = Σ gᵢ/Dᵢ` with
//! `gᵢ = Dᵢ − s Dᵢ'`, which has a recurrence of its own that never subtracts two O(s) numbers:
//!
//! ```text
//! D₁ = d₁ + s,  g₁ = d₁;   Dᵢ = dᵢ + s − e²ᵢ₋₁/Dᵢ₋₁,  gᵢ = dᵢ − e²ᵢ₋₁ (2Dᵢ₋₁ − gᵢ₋₁)/D²ᵢ₋₁
//! ```
//!
//! Each `gᵢ/Dᵢ` lies in (0, 1) (Cauchy interlacing of the leading blocks), so the sum does not
//! cancel either. One division per entry and point, and the points are independent: they run
//! [`LANES`] at a time, so the divisions pipeline, where the QL iteration waits on each one.
//!
//! Rounding: `T + s I` (s ≥ 0) is positive definite, so its `L D Lᵀ` needs no pivoting and is
//! stable; `f(s)` is off by about `n ε λ_max/(λ_min + s)`, which integrates to about `n ε √κ`
//! relative, the same order as taking square roots of eigenvalues that are each off by
//! `ε λ_max`. Valid only when every pivot is positive at every point: [`trace_sqrt`] returns
//! `None` otherwise (a singular or indefinite `T`, up to round-off), and the caller takes
//! eigenvalues.

/// Step of the trapezoidal rule in `u = ln t` (module docs: relative error ≤ 4 e^{−π²/h}).
pub const STEP: f64 = 0.28;
/// Margin in `u` beyond the extreme eigenvalues' `½ ln λ`: a sech tail of
/// `0.74 e^{−TAIL} < 1e-15` relative is left out on each side.
pub const TAIL: f64 = 34.2;
/// Points of the rule evaluated together: independent recurrences whose divisions pipeline
/// (16 took 47–62 µs at n = 128 against 58–63 µs with 8 and 68–74 µs with 32).
const LANES: usize = 16;

/// `Σ √λᵢ` of the symmetric tridiagonal matrix with diagonal `diag` (n) and off-diagonal
/// `offdiag` (n − 1) to about 1e-14 relative (module docs), or `None` if it is not numerically
/// positive definite.
pub fn trace_sqrt(diag: &[f64], offdiag: &[f64]) -> Option<f64> {
    let n = diag.len();
    assert_eq!(
        offdiag.len(),
        n.saturating_sub(1),
        "n − 1 off-diagonal entries"
    );
    if n == 0 {
        return Some(0.0);
    }
    let largest_diagonal = diag.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x));
    if !(largest_diagonal > 0.0 && largest_diagonal.is_finite()) {
        return None;
    }
    // Scale by a power of two so that the largest diagonal entry is near 1: exact, and the
    // points s stay far from overflow and underflow.
    let scale = 2f64.powi(-(largest_diagonal.log2().round() as i32));
    let d: Vec<f64> = diag.iter().map(|x| x * scale).collect();
    let squared: Vec<f64> = offdiag.iter().map(|x| (x * scale) * (x * scale)).collect();
    let gershgorin = (0..n)
        .map(|i| {
            let left = if i > 0 { squared[i - 1].sqrt() } else { 0.0 };
            let right = if i + 1 < n { squared[i].sqrt() } else { 0.0 };
            d[i] + left + right
        })
        .fold(0.0, f64::max);
    let floor = (1e-15 * (largest_diagonal * scale).sqrt() / n as f64).powi(2);
    let smallest = smallest_eigenvalue_bound(&d, &squared, floor, gershgorin);
    let (lowest, highest) = (0.5 * smallest.ln() - TAIL, 0.5 * gershgorin.ln() + TAIL);
    let points = ((highest - lowest) / STEP).ceil() as usize + 1;
    let mut total = 0.0;
    for first in (0..points).step_by(LANES) {
        // Lanes past the last point repeat the largest s (the safest) with weight 0.
        let mut s = [(2.0 * highest).exp(); LANES];
        let mut weight = [0.0; LANES];
        for (lane, k) in (first..(first + LANES).min(points)).enumerate() {
            let u = lowest + k as f64 * STEP;
            s[lane] = (2.0 * u).exp();
            weight[lane] = u.exp();
        }
        let lanes = pivot_recurrence(&d, &squared, &s);
        if !lanes.all_pivots_positive() {
            return None;
        }
        total += (0..LANES).map(|l| weight[l] * lanes.sum[l]).sum::<f64>();
    }
    let sum = total * STEP * std::f64::consts::FRAC_2_PI / scale.sqrt();
    sum.is_finite().then_some(sum)
}

/// A number at most the smallest eigenvalue that matters, at least `floor`: the largest of
/// [`LANES`] shifts `x`, spaced geometrically from `floor` to `gershgorin`, at which `T − x I`
/// has only positive pivots (so, by Sylvester's law of inertia, `λ_min > x`), else `floor`.
/// The rule's grid then starts [`TAIL`] below `½ ln λ_min` instead of below `½ ln floor`: a third
/// fewer points for the spectra of the W2 benchmark.
fn smallest_eigenvalue_bound(d: &[f64], squared: &[f64], floor: f64, gershgorin: f64) -> f64 {
    let ratio = (gershgorin / floor).powf(1.0 / LANES as f64);
    let mut shift = [0.0; LANES];
    let mut x = floor;
    for s in &mut shift {
        *s = -x;
        x *= ratio;
    }
    let lanes = pivot_recurrence(d, squared, &shift);
    (0..LANES)
        .filter(|&l| lanes.smallest_pivot[l] > 0.0)
        .map(|l| -shift[l])
        .fold(floor, f64::max)
}

/// What the pivot recurrence of the module docs gives at [`LANES`] points `s`:
/// `f(s) = tr T (T + s I)⁻¹` and the smallest pivot of `T + s I`.
struct Lanes {
    sum: [f64; LANES],
    smallest_pivot: [f64; LANES],
}

impl Lanes {
    /// Whether `T + s I` had only positive pivots at every point (`min` skips NaN: a NaN pivot
    /// shows in the sum instead).
    fn all_pivots_positive(&self) -> bool {
        self.smallest_pivot.iter().all(|&p| p > 0.0) && self.sum.iter().all(|v| v.is_finite())
    }
}

/// The pivot recurrence of the module docs at the points `s`. Compiled for AVX where the CPU
/// has it (wider divisions; the same operations, so the same result).
fn pivot_recurrence(d: &[f64], squared: &[f64], s: &[f64; LANES]) -> Lanes {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the feature this function was compiled for is present.
        return unsafe { pivot_recurrence_avx(d, squared, s) };
    }
    pivot_recurrence_generic(d, squared, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn pivot_recurrence_avx(d: &[f64], squared: &[f64], s: &[f64; LANES]) -> Lanes {
    pivot_recurrence_generic(d, squared, s)
}

#[inline(always)]
fn pivot_recurrence_generic(d: &[f64], squared: &[f64], s: &[f64; LANES]) -> Lanes {
    let mut pivot = [0.0; LANES];
    let mut g = [0.0; LANES];
    let mut reciprocal = [0.0; LANES];
    let mut sum = [0.0; LANES];
    let mut smallest_pivot = [0.0; LANES];
    for l in 0..LANES {
        pivot[l] = d[0] + s[l];
        g[l] = d[0];
        reciprocal[l] = 1.0 / pivot[l];
        sum[l] = g[l] * reciprocal[l];
        smallest_pivot[l] = pivot[l];
    }
    for (&di, &e2) in d[1..].iter().zip(squared) {
        for l in 0..LANES {
            let t = e2 * reciprocal[l];
            let next_pivot = (di + s[l]) - t;
            g[l] = di - t * ((2.0 * pivot[l] - g[l]) * reciprocal[l]);
            pivot[l] = next_pivot;
            reciprocal[l] = 1.0 / next_pivot;
            sum[l] += g[l] * reciprocal[l];
            smallest_pivot[l] = smallest_pivot[l].min(next_pivot);
        }
    }
    Lanes {
        sum,
        smallest_pivot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eigen::tridiagonal_eigenvalues;

    fn assert_close(ours: f64, expected: f64, what: &str) {
        let error = (ours - expected).abs() / expected.abs();
        assert!(
            error <= 1e-13,
            "{what}: {ours} vs {expected} ({error:.1e} relative)"
        );
    }

    /// `Σ √λ` with `λ = a + 2b cos(kπ/(n+1))`, k = 1..n, the eigenvalues of the tridiagonal
    /// Toeplitz matrix with `a` on the diagonal and `b` beside it.
    fn toeplitz(n: usize, a: f64, b: f64) -> (Vec<f64>, Vec<f64>, f64) {
        let closed_form = (1..=n)
            .map(|k| {
                (a + 2.0 * b * (k as f64 * std::f64::consts::PI / (n as f64 + 1.0)).cos()).sqrt()
            })
            .sum();
        (vec![a; n], vec![b; n - 1], closed_form)
    }

    #[test]
    fn matches_the_closed_form_of_toeplitz_matrices() {
        // From well conditioned (λ in (0.5, 4.5)) to κ ≈ 4e10 (a barely above 2|b|), and scaled
        // far from 1 both ways.
        for (n, a, b) in [
            (1, 3.0, 0.0),
            (2, 2.5, 1.0),
            (7, 2.5, -1.0),
            (128, 2.5, 1.0),
            (1000, 2.0 + 1e-10, -1.0),
            (300, 3e-200, 1e-200),
            (300, 3e200, -1e200),
        ] {
            let (d, e, expected) = toeplitz(n, a, b);
            let ours = trace_sqrt(&d, &e).expect("positive definite");
            assert_close(ours, expected, &format!("n = {n}, a = {a}, b = {b}"));
        }
    }

    #[test]
    fn a_diagonal_matrix_gives_the_sum_of_its_square_roots() {
        // Eigenvalues over 24 orders of magnitude; the smallest are below the rule's floor
        // (1e-30 relative to the largest at n = 40) and count for nothing at 1e-13.
        let d: Vec<f64> = (0..40).map(|i| 10f64.powf(3.0 - 0.6 * i as f64)).collect();
        let expected: f64 = d.iter().map(|x| x.sqrt()).sum();
        assert_close(
            trace_sqrt(&d, &vec![0.0; 39]).unwrap(),
            expected,
            "diagonal",
        );
    }

    #[test]
    fn matches_the_ql_eigenvalues_of_random_positive_definite_matrices() {
        // Gram-like spectra: d = x², e = x y from random x, y, so T = B Bᵀ for a bidiagonal B.
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [3, 50, 128, 517] {
            let x: Vec<f64> = (0..n).map(|_| 0.05 + uniform()).collect();
            let y: Vec<f64> = (0..n).map(|_| uniform() - 0.5).collect();
            let d: Vec<f64> = (0..n)
                .map(|i| x[i] * x[i] + if i > 0 { y[i - 1] * y[i - 1] } else { 0.0 })
                .collect();
            let e: Vec<f64> = (0..n - 1).map(|i| x[i] * y[i]).collect();
            let expected: f64 = tridiagonal_eigenvalues(d.clone(), e.clone())
                .unwrap()
                .iter()
                .map(|l| l.sqrt())
                .sum();
            assert_close(trace_sqrt(&d, &e).unwrap(), expected, &format!("n = {n}"));
        }
    }

    #[test]
    fn the_grid_starts_within_one_shift_below_the_smallest_eigenvalue() {
        // λ_min of the Toeplitz matrices is a − 2|b| cos(π/(n+1)); of the diagonal one, 1e-20.
        let (floor, gershgorin) = (1e-40f64, 5.0);
        let ratio = (gershgorin / floor).powf(1.0 / LANES as f64);
        let diagonal: Vec<f64> = (0..30)
            .map(|i| if i == 7 { 1e-20 } else { 1.0 + i as f64 / 10.0 })
            .collect();
        for (d, e) in [
            (vec![2.5; 50], vec![1.0; 49]),
            (vec![2.0 + 1e-9; 50], vec![-1.0; 49]),
            (diagonal, vec![0.0; 29]),
        ] {
            let smallest = tridiagonal_eigenvalues(d.clone(), e.clone()).unwrap()[0];
            let squared: Vec<f64> = e.iter().map(|x| x * x).collect();
            let bound = smallest_eigenvalue_bound(&d, &squared, floor, gershgorin);
            assert!(
                bound <= smallest && bound * ratio >= smallest,
                "λ_min {smallest:e}, bound {bound:e}"
            );
        }
    }

    #[test]
    fn refuses_matrices_that_are_not_positive_definite() {
        // Indefinite (a < 2|b|), negative semidefinite, zero, and with a non-finite entry.
        let (d, e, _) = toeplitz(20, 1.9, 1.0);
        assert_eq!(trace_sqrt(&d, &e), None);
        assert_eq!(trace_sqrt(&[-1.0, -2.0], &[0.5]), None);
        assert_eq!(trace_sqrt(&[0.0; 3], &[0.0; 2]), None);
        assert_eq!(trace_sqrt(&[1.0, f64::NAN], &[0.0]), None);
        assert_eq!(trace_sqrt(&[], &[]), Some(0.0));
    }
}
