//! Unblocked Householder reduction of a symmetric matrix to tridiagonal form (LAPACK `dsytd2`,
//! lower triangle), with the rank-2 update of each column fused into the next column's
//! matrix–vector product, so the trailing matrix is read and written once per column instead of
//! twice. [`super::symmetric_eigenvalues`] uses it below [`super::TWO_STAGE_FROM`]: there it is
//! as fast as or faster than the blocked one-stage reduction (LAPACK `dsytrd`, 2 threads) on the
//! 2-core development machine (d = 128: 0.14–0.15 ms against faer's unblocked 0.3 ms; d = 512:
//! 7.1 ms + QL 4.4 ms against 15.1 ms; d = 1152: 90 ms + QL 21 ms against 110 ms).
//!
//! Column k, with the trailing matrix `A = A[k+1:, k+1:]` and the update `(v', w')` of column
//! k − 1 still pending (Golub & Van Loan §8.3.1):
//!
//! ```text
//! A[k:, k] −= v' w'_k + w' v'_k                       (bring the column up to date)
//! v, τ, β = householder(A[k+1:, k]);  e_k = β          (I − τ v vᵀ) A[k+1:, k] = β e₁, v₀ = 1
//! A −= v' w'ᵀ + w' v'ᵀ  and  p = τ A v                 (one pass over A, column pair by pair)
//! w = p − ½ τ (pᵀ v) v;   (v', w') ← (v, w)
//! ```
//!
//! The lower triangle is copied into packed columns first (column j holds rows j..n), half the
//! memory of the square matrix, so more of it stays in the first-level cache.

use faer::MatRef;

use super::{dot, reflector};

/// Columns of the trailing matrix updated and multiplied together in one pass.
const BLOCK: usize = 2;

/// Diagonal and off-diagonal of a tridiagonal matrix orthogonally similar to the symmetric
/// matrix whose lower triangle is `a` (at least 1 × 1; the strict upper triangle is not read).
pub fn tridiagonalise(a: MatRef<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features this function was compiled for are present.
        return unsafe { tridiagonalise_avx2(a) };
    }
    tridiagonalise_generic(a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tridiagonalise_avx2(a: MatRef<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    tridiagonalise_generic(a)
}

#[inline(always)]
fn tridiagonalise_generic(a: MatRef<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    let n = a.nrows();
    assert!(n >= 1 && a.ncols() == n, "a non-empty square matrix");
    let mut packed = Packed::from_lower(a);
    let mut diag = vec![0.0; n];
    let mut offdiag = vec![0.0; n - 1];
    // The pending update (v', w') and the new (v, p), indexed by row; rows before the current
    // trailing matrix are unused.
    let (mut pending_v, mut pending_w) = (vec![0.0f64; n], vec![0.0f64; n]);
    let (mut v, mut p) = (vec![0.0f64; n], vec![0.0f64; n]);
    for k in 0..n {
        let column = packed.column_mut(k);
        let (vk, wk) = (pending_v[k], pending_w[k]);
        for ((x, vi), wi) in column.iter_mut().zip(&pending_v[k..]).zip(&pending_w[k..]) {
            *x = (-*vi).mul_add(wk, (-*wi).mul_add(vk, *x));
        }
        diag[k] = column[0];
        if k + 1 == n {
            break;
        }
        let (beta, tau) = householder(&mut column[1..], &mut v[k + 1..]);
        offdiag[k] = beta;
        p[k + 1..].fill(0.0);
        let mut j = k + 1;
        while j + BLOCK <= n {
            update_and_multiply(
                packed.columns_mut::<BLOCK>(j),
                j,
                [&pending_v, &pending_w],
                &v,
                &mut p,
            );
            j += BLOCK;
        }
        for j in j..n {
            update_and_multiply(
                packed.columns_mut::<1>(j),
                j,
                [&pending_v, &pending_w],
                &v,
                &mut p,
            );
        }
        let alpha = -0.5 * tau * tau * dot(&p[k + 1..], &v[k + 1..]);
        for ((wi, pi), vi) in pending_w[k + 1..]
            .iter_mut()
            .zip(&p[k + 1..])
            .zip(&v[k + 1..])
        {
            *wi = tau.mul_add(*pi, alpha * vi);
        }
        pending_v[k + 1..].copy_from_slice(&v[k + 1..]);
    }
    (diag, offdiag)
}

/// The lower triangle by packed columns: column j (rows j..n) starts at `Σ_{t<j} (n − t)`.
struct Packed {
    n: usize,
    data: Vec<f64>,
}

impl Packed {
    fn from_lower(a: MatRef<'_, f64>) -> Self {
        let n = a.nrows();
        let mut data = Vec::with_capacity(n * (n + 1) / 2);
        for j in 0..n {
            data.extend(a.col(j).subrows(j, n - j).iter());
        }
        Self { n, data }
    }

    fn start(&self, j: usize) -> usize {
        j * self.n - j * j.saturating_sub(1) / 2
    }

    fn column_mut(&mut self, j: usize) -> &mut [f64] {
        let [column] = self.columns_mut::<1>(j);
        column
    }

    /// Columns j..j + C.
    fn columns_mut<const C: usize>(&mut self, j: usize) -> [&mut [f64]; C] {
        let start = self.start(j);
        let mut rest = &mut self.data[start..];
        std::array::from_fn(|c| {
            let (column, after) = std::mem::take(&mut rest).split_at_mut(self.n - j - c);
            rest = after;
            column
        })
    }
}

/// For the `C` adjacent columns `columns` (column c holds rows j + c..n of column j + c):
/// subtracts the pending update `v' w'ᵀ + w' v'ᵀ` (`pending` = [v', w']) and adds their share of
/// `A v` to `p`: `A[i, j+c]·v_{j+c}` to `p_i` and `A[i, j+c]·v_i` to `p_{j+c}` (`i > j + c`), the
/// diagonal once. The rows below the block are done together in one pass, with independent
/// partial sums.
#[inline(always)]
fn update_and_multiply<const C: usize>(
    mut columns: [&mut [f64]; C],
    j: usize,
    [pending_v, pending_w]: [&[f64]; 2],
    v: &[f64],
    p: &mut [f64],
) {
    let n = v.len();
    let coefficient = |c: usize| (pending_v[j + c], pending_w[j + c], v[j + c]);
    // Rows j..j + C, inside the block.
    for (c, column) in columns.iter_mut().enumerate() {
        let (vc, wc, xc) = coefficient(c);
        for i in j + c..j + C {
            let a = &mut column[i - j - c];
            *a = (-pending_v[i]).mul_add(wc, (-pending_w[i]).mul_add(vc, *a));
            if i == j + c {
                p[i] = a.mul_add(xc, p[i]);
            } else {
                p[j + c] = a.mul_add(v[i], p[j + c]);
                p[i] = a.mul_add(xc, p[i]);
            }
        }
    }
    // Rows j + C..n, shared by every column.
    const LANES: usize = 4;
    let rows = j + C..n;
    let (block, out) = p[j..].split_at_mut(C);
    let (pv, pw, x) = (&pending_v[rows.clone()], &pending_w[rows.clone()], &v[rows]);
    let mut below: [&mut [f64]; C] = columns.map(|column| {
        let skip = column.len() - out.len();
        &mut column[skip..]
    });
    let mut sums = [[0.0; LANES]; C];
    let coefficients: [(f64, f64, f64); C] = std::array::from_fn(coefficient);
    let body = out.len() - out.len() % LANES;
    for start in (0..body).step_by(LANES) {
        let end = start + LANES;
        let (pv, pw, x) = (&pv[start..end], &pw[start..end], &x[start..end]);
        let mut a = [[0.0; LANES]; C];
        for c in 0..C {
            a[c].copy_from_slice(&below[c][start..end]);
        }
        let mut acc = [0.0; LANES];
        acc.copy_from_slice(&out[start..end]);
        for c in 0..C {
            let (vc, wc, xc) = coefficients[c];
            for l in 0..LANES {
                a[c][l] = (-pv[l]).mul_add(wc, (-pw[l]).mul_add(vc, a[c][l]));
                sums[c][l] = a[c][l].mul_add(x[l], sums[c][l]);
                acc[l] = a[c][l].mul_add(xc, acc[l]);
            }
        }
        for c in 0..C {
            below[c][start..end].copy_from_slice(&a[c]);
        }
        out[start..end].copy_from_slice(&acc);
    }
    for (c, column) in below.iter_mut().enumerate() {
        let (vc, wc, xc) = coefficients[c];
        let mut tail = 0.0;
        for r in body..out.len() {
            let a = &mut column[r];
            *a = (-pv[r]).mul_add(wc, (-pw[r]).mul_add(vc, *a));
            tail = a.mul_add(x[r], tail);
            out[r] = a.mul_add(xc, out[r]);
        }
        block[c] += sums[c].iter().sum::<f64>() + tail;
    }
}

/// The Householder reflector `I − τ v vᵀ` with `v₀ = 1` that maps `x` (overwritten, of no
/// further use) to `β e₁` (LAPACK `dlarfg`); writes `v` and returns `(β, τ)`. The plain sum of
/// squares is used where it cannot have underflowed or overflowed; otherwise, and for a zero
/// tail (τ = 0), faer's scaled routine through [`reflector`].
#[inline(always)]
fn householder(x: &mut [f64], v: &mut [f64]) -> (f64, f64) {
    let tail_squared = dot(&x[1..], &x[1..]);
    if !(SAFE_SQUARES.contains(&tail_squared) && x[0].abs() < SAFE_SQUARES.end().sqrt()) {
        let tau = reflector(x, v);
        return (x[0], tau);
    }
    let (alpha, tail) = x.split_first_mut().expect("a non-empty column");
    let beta = -alpha.hypot(tail_squared.sqrt()).copysign(*alpha);
    let tau = (beta - *alpha) / beta;
    let scale = 1.0 / (*alpha - beta);
    v[0] = 1.0;
    for (vi, t) in v[1..].iter_mut().zip(tail.iter()) {
        *vi = t * scale;
    }
    (beta, tau)
}

/// Sums of squares in this range carry no underflow or overflow from the squaring.
const SAFE_SQUARES: std::ops::RangeInclusive<f64> = 1e-280..=1e280;

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn eigenvalues_of_tridiagonal(diag: &[f64], offdiag: &[f64]) -> Vec<f64> {
        let n = diag.len();
        let t = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
            0 => diag[i],
            1 => offdiag[i.min(j)],
            _ => 0.0,
        });
        t.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
    }

    fn assert_same_spectrum(a: &Mat<f64>, what: &str) {
        let (diag, offdiag) = tridiagonalise(a.as_ref());
        let ours = eigenvalues_of_tridiagonal(&diag, &offdiag);
        let theirs = a.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        let scale = theirs.iter().fold(f64::MIN_POSITIVE, |s, l| s.max(l.abs()));
        for (x, y) in ours.iter().zip(&theirs) {
            assert!((x - y).abs() <= 1e-13 * scale, "{what}: {x} vs {y}");
        }
    }

    #[test]
    fn keeps_the_spectrum_for_every_small_order_and_scale() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for n in (1..=20).chain([63, 64, 65, 130]) {
            let b = crate::test_support::standard_normal_matrix(n, n, &mut rng);
            for scale in [1.0, 1e-160, 1e160] {
                let a = Mat::from_fn(n, n, |i, j| scale * (b[(i, j)] + b[(j, i)]));
                assert_same_spectrum(&a, &format!("n = {n}, scale {scale}"));
            }
        }
    }

    #[test]
    fn zero_columns_give_identity_reflectors() {
        // Diagonal and tridiagonal inputs: every Householder tail is zero (τ = 0), so the
        // diagonal and off-diagonal come back unchanged up to the off-diagonal's sign.
        let n = 9;
        let a = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
            0 => i as f64 - 3.0,
            1 => 0.5 + i.min(j) as f64,
            _ => 0.0,
        });
        let (diag, offdiag) = tridiagonalise(a.as_ref());
        for i in 0..n {
            assert_eq!(diag[i], a[(i, i)]);
        }
        for i in 0..n - 1 {
            assert_eq!(offdiag[i].abs(), a[(i + 1, i)]);
        }
        assert_same_spectrum(
            &Mat::from_fn(n, n, |i, j| if i == j { 2.0 } else { 0.0 }),
            "diagonal",
        );
    }

    #[test]
    fn reads_only_the_lower_triangle() {
        let n = 12;
        let a = Mat::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let lower = Mat::from_fn(n, n, |i, j| a[(i.max(j), i.min(j))]);
        let garbage = Mat::from_fn(n, n, |i, j| if i < j { f64::NAN } else { a[(i, j)] });
        assert_eq!(
            tridiagonalise(lower.as_ref()),
            tridiagonalise(garbage.as_ref())
        );
        assert_same_spectrum(&lower, "lower triangle");
    }
}
