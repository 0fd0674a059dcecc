//! Eigenvalues of a real symmetric matrix, for the trace term of the closed-form W2
//! ([`crate::theory::gaussian`]): a blocked Householder reduction to tridiagonal form (the scheme
//! of LAPACK's `dsytrd`/`dlatrd`, lower triangle), then the root-free QL iteration of Pal, Walker
//! and Kahan on the tridiagonal matrix ([`tridiagonal_eigenvalues`]).
//!
//! faer 0.24's own reduction is unblocked: every column reads and rewrites the whole trailing
//! matrix (a fused symmetric matrix–vector product and rank-2 update), which is memory-bound
//! once the matrix leaves the caches (d ≳ 1000). Here a panel of [`PANEL`] columns reads the
//! trailing matrix once per column (the matrix–vector product) and rewrites it once per panel,
//! by a rank-2·[`PANEL`] update in faer's triangular matrix product. The last, small trailing
//! matrix is reduced by faer's unblocked routine.
//!
//! Reduction of column j of the trailing matrix A (m × m, j counted within the panel), with the
//! panel's earlier reflectors in V and their partial products in W (Golub & Van Loan §8.3;
//! LAPACK `dlatrd`):
//!
//! ```text
//! A[j:, j] −= V[j:, :j] W[j, :j]ᵀ + W[j:, :j] V[j, :j]ᵀ       (bring the column up to date)
//! v, τ, β  = householder(A[j+1:, j]);   e_j = β                (I − τ v vᵀ) A[j+1:, j] = β e₁
//! w = τ (A[j+1:, j+1:] v − V W[j+1:, :j]ᵀ v − W V[j+1:, :j]ᵀ v)
//! w −= ½ τ (wᵀ v) v
//! ```
//!
//! and after the panel the trailing matrix becomes `A − V Wᵀ − W Vᵀ`.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::tridiag::{tridiag_in_place, tridiag_in_place_scratch};
use faer::linalg::householder::make_householder_in_place;
use faer::linalg::matmul::matmul as gemm;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as triangular_matmul};
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, ColMut, ColRef, Mat, MatMut, MatRef, Par};

/// Columns reduced per panel.
pub const PANEL: usize = 32;
/// Below this order the rest of the matrix is reduced by faer's unblocked routine (and a
/// matrix smaller than this entirely: there the trailing matrices sit in cache and the panel
/// bookkeeping costs more than it saves).
pub const UNBLOCKED_BELOW: usize = 384;
/// Below this order the symmetric matrix–vector product runs on one thread.
const PARALLEL_SYMV_MIN: usize = 256;

/// The eigenvalues, in nondecreasing order, of the symmetric matrix whose lower triangle is
/// stored in `a` (the strict upper triangle is ignored and overwritten).
pub fn symmetric_eigenvalues(mut a: Mat<f64>, par: Par) -> Result<Vec<f64>, NoConvergence> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "a square matrix");
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut diag = vec![0.0; n];
    let mut subdiag = vec![0.0; n];
    let mut w = Mat::<f64>::zeros(n, PANEL);
    let mut k = 0;
    while n - k >= UNBLOCKED_BELOW.max(PANEL + 1) {
        let m = n - k;
        let mut trailing = a.as_mut().submatrix_mut(k, k, m, m);
        let mut w = w.as_mut().subrows_mut(0, m);
        reduce_panel(
            trailing.rb_mut(),
            &mut subdiag[k..k + PANEL],
            w.rb_mut(),
            par,
        );
        let (panel, rest) = trailing.rb_mut().split_at_col_mut(PANEL);
        let v = panel.rb().subrows(PANEL, m - PANEL);
        let w2 = w.rb().subrows(PANEL, m - PANEL);
        let mut a22 = rest.subrows_mut(PANEL, m - PANEL);
        for (lhs, rhs) in [(v, w2), (w2, v)] {
            triangular_matmul(
                a22.rb_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                lhs,
                BlockStructure::Rectangular,
                rhs.transpose(),
                BlockStructure::Rectangular,
                -1.0,
                par,
            );
        }
        for j in 0..PANEL {
            diag[k + j] = trailing[(j, j)];
        }
        k += PANEL;
    }
    let m = n - k;
    let mut tail = a.as_mut().submatrix_mut(k, k, m, m);
    let mut householder = Mat::<f64>::zeros(1, m.saturating_sub(1));
    let mut buffer = MemBuffer::new(tridiag_in_place_scratch::<f64>(
        m,
        Par::Seq,
        Default::default(),
    ));
    tridiag_in_place(
        tail.rb_mut(),
        householder.as_mut(),
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    );
    for j in 0..m {
        diag[k + j] = tail[(j, j)];
        if j + 1 < m {
            subdiag[k + j] = tail[(j + 1, j)];
        }
    }
    subdiag.truncate(n - 1);
    tridiagonal_eigenvalues(diag, subdiag)
}

/// The QL iteration of [`tridiagonal_eigenvalues`] needed more than
/// [`MAX_ITERATIONS_PER_EIGENVALUE`] iterations per eigenvalue on average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoConvergence {
    /// Order of the tridiagonal matrix.
    pub order: usize,
}

/// Iteration budget per eigenvalue of the QL iteration (LAPACK's `MAXIT`); convergence is cubic,
/// so two or three are typical.
pub const MAX_ITERATIONS_PER_EIGENVALUE: usize = 30;

/// The eigenvalues, in nondecreasing order, of the symmetric tridiagonal matrix with diagonal
/// `diag` (n) and off-diagonal `offdiag` (n − 1): the root-free QL iteration with implicit
/// Wilkinson-like shifts of Pal, Walker and Kahan (Parlett, *The Symmetric Eigenvalue Problem*,
/// §8.15; the scheme of LAPACK's `dsterf`), which works on the squared off-diagonals and needs no
/// square root per rotation.
///
/// The matrix first splits where `|e_i| ≤ ε √|d_i| √|d_{i+1}|`; each unreduced block is scaled
/// by a power of two when its entries are near overflow or underflow and turned end for end when
/// its last diagonal entry is the smaller, so that eigenvalues deflate at the top in increasing
/// magnitude. One QL sweep over a block `l..=m` with shift σ, writing `e²` for the squared
/// off-diagonals and starting from `γ = d_m − σ`, `p = γ²`, `c = 1`, `s = 0`:
///
/// ```text
/// for i = m−1 down to l:
///     r = p + e²_i;  e²_{i+1} = s r (i < m−1);  c' = c;  c = p / r;  s = e²_i / r
///     γ' = γ;  γ = c (d_i − σ) − s γ';  d_{i+1} = γ' + (d_i − γ)
///     p = γ² / c  (or c' e²_i when c = 0)
/// e²_l = s p;  d_l = σ + γ
/// ```
pub fn tridiagonal_eigenvalues(
    mut diag: Vec<f64>,
    offdiag: Vec<f64>,
) -> Result<Vec<f64>, NoConvergence> {
    let n = diag.len();
    assert_eq!(
        offdiag.len(),
        n.saturating_sub(1),
        "n − 1 off-diagonal entries"
    );
    let mut start = 0;
    while start < n {
        let mut end = start;
        while end + 1 < n
            && offdiag[end].abs()
                > UNIT_ROUNDOFF * diag[end].abs().sqrt() * diag[end + 1].abs().sqrt()
        {
            end += 1;
        }
        if end > start {
            let block = &mut diag[start..=end];
            let mut squared: Vec<f64> = offdiag[start..end].to_vec();
            ql_iteration_on_block(block, &mut squared).map_err(|()| NoConvergence { order: n })?;
        }
        start = end + 1;
    }
    diag.sort_by(f64::total_cmp);
    Ok(diag)
}

/// Unit round-off (half the machine epsilon), LAPACK's `dlamch('E')`.
const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Eigenvalues, in place, of the unreduced tridiagonal block with diagonal `d` and off-diagonal
/// `e` (overwritten: scaled, squared, then iterated on).
fn ql_iteration_on_block(d: &mut [f64], e: &mut [f64]) -> Result<(), ()> {
    let largest = d.iter().chain(e.iter()).fold(0.0f64, |a, x| a.max(x.abs()));
    // Squares of the entries must neither overflow nor underflow: bring the largest near 1.
    let scale = if (1e-100..=1e100).contains(&largest) {
        1.0
    } else {
        2f64.powi(-(largest.log2().round() as i32))
    };
    if d[d.len() - 1].abs() < d[0].abs() {
        d.reverse();
        e.reverse();
    }
    d.iter_mut().for_each(|x| *x *= scale);
    e.iter_mut().for_each(|x| *x = (*x * scale) * (*x * scale));
    let b = d.len();
    let tolerance = UNIT_ROUNDOFF * UNIT_ROUNDOFF;
    let mut budget = MAX_ITERATIONS_PER_EIGENVALUE * b;
    let mut l = 0;
    while l < b {
        let mut m = l;
        while m + 1 < b && e[m].abs() > tolerance * (d[m] * d[m + 1]).abs() {
            m += 1;
        }
        if m + 1 < b {
            e[m] = 0.0;
        }
        match m - l {
            0 => l += 1,
            1 => {
                (d[l], d[l + 1]) = symmetric_2x2_eigenvalues(d[l], e[l].sqrt(), d[l + 1]);
                e[l] = 0.0;
                l += 2;
            }
            _ => {
                if budget == 0 {
                    return Err(());
                }
                budget -= 1;
                ql_sweep(&mut d[l..=m], &mut e[l..m]);
            }
        }
    }
    d.iter_mut().for_each(|x| *x /= scale);
    Ok(())
}

/// One shifted root-free QL sweep over the unreduced block `d` (diagonal), `e` (squared
/// off-diagonal); the formulas are in [`tridiagonal_eigenvalues`]. The shift is the eigenvalue
/// of the leading 2 × 2 block closer to `d[0]`.
fn ql_sweep(d: &mut [f64], e: &mut [f64]) {
    let m = d.len() - 1;
    let root = e[0].sqrt();
    let t = (d[1] - d[0]) / (2.0 * root);
    let sigma = d[0] - root / (t + t.hypot(1.0).copysign(t));
    let (mut c, mut s) = (1.0, 0.0);
    let mut gamma = d[m] - sigma;
    let mut p = gamma * gamma;
    for i in (0..m).rev() {
        let squared = e[i];
        let r = p + squared;
        if i + 1 != m {
            e[i + 1] = s * r;
        }
        let previous_c = c;
        c = p / r;
        s = squared / r;
        let previous_gamma = gamma;
        gamma = c * (d[i] - sigma) - s * previous_gamma;
        d[i + 1] = previous_gamma + (d[i] - gamma);
        p = if c != 0.0 {
            gamma * gamma / c
        } else {
            previous_c * squared
        };
    }
    e[0] = s * p;
    d[0] = sigma + gamma;
}

/// Eigenvalues `(λ₁, λ₂)` of `[[a, b], [b, c]]`, the larger in magnitude first; the smaller is
/// taken from the determinant, `λ₂ = (a c − b²)/λ₁`, to keep its relative accuracy.
fn symmetric_2x2_eigenvalues(a: f64, b: f64, c: f64) -> (f64, f64) {
    let (sum, radius) = (a + c, (a - c).hypot(2.0 * b));
    let (big, small) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    if sum == 0.0 {
        return (0.5 * radius, -0.5 * radius);
    }
    let first = 0.5 * (sum + radius.copysign(sum));
    (first, (big / first) * small - (b / first) * b)
}

/// Reduces the first [`PANEL`] columns of the trailing matrix `a` (m × m, m > PANEL): the
/// subdiagonal entries go to `subdiag`, the reflectors stay below the subdiagonal of `a` with
/// their unit first entries written in, and `w` (m × PANEL) receives W (module docs). The
/// panel's diagonal entries are final on return; the trailing matrix past the panel is not yet
/// updated.
fn reduce_panel(mut a: MatMut<'_, f64>, subdiag: &mut [f64], mut w: MatMut<'_, f64>, par: Par) {
    let m = a.nrows();
    let mut t = Mat::<f64>::zeros(PANEL, 1);
    for (j, beta) in subdiag.iter_mut().enumerate().take(PANEL) {
        let (done, mut current) = a.rb_mut().split_at_col_mut(j);
        let (v_done, w_done) = (
            done.rb().subrows(j, m - j),
            w.rb().subcols(0, j).subrows(j, m - j),
        );
        let mut column = current.rb_mut().col_mut(0).subrows_mut(j, m - j);
        // A[j:, j] −= V[j:, :j] W[j, :j]ᵀ + W[j:, :j] V[j, :j]ᵀ
        for (lhs, rhs) in [(v_done, w_done), (w_done, v_done)] {
            gemm(
                column.rb_mut().as_mat_mut(),
                Accum::Add,
                lhs,
                rhs.row(0).transpose().as_mat(),
                -1.0,
                Par::Seq,
            );
        }
        // (I − τ v vᵀ) A[j+1:, j] = β e₁, v₀ = 1; faer's factor is 1/τ.
        let (mut head, tail) = column
            .rb_mut()
            .subrows_mut(1, m - j - 1)
            .split_at_row_mut(1);
        let head = &mut head[0];
        let info = make_householder_in_place(head, tail);
        let tau = info.tau.recip();
        *beta = *head;
        *head = 1.0;
        let v = current.rb().col(0).subrows(j + 1, m - j - 1);
        let trailing = current.rb().subcols(1, m - j - 1).subrows(j + 1, m - j - 1);
        let (w_done, mut w_new) = w.rb_mut().subrows_mut(j + 1, m - j - 1).split_at_col_mut(j);
        let mut w_new = w_new.rb_mut().col_mut(0);
        symmetric_times_vector(trailing, v, w_new.rb_mut(), par);
        // w −= V W[j+1:, :j]ᵀ v + W V[j+1:, :j]ᵀ v
        let v_below = done.rb().subrows(j + 1, m - j - 1);
        let mut t = t.as_mut().subrows_mut(0, j);
        for (first, second) in [(w_done.rb(), v_below), (v_below, w_done.rb())] {
            gemm(
                t.rb_mut(),
                Accum::Replace,
                first.transpose(),
                v.as_mat(),
                1.0,
                Par::Seq,
            );
            gemm(
                w_new.rb_mut().as_mat_mut(),
                Accum::Add,
                second,
                t.rb(),
                -1.0,
                Par::Seq,
            );
        }
        let alpha = -0.5 * tau * tau * dot(w_new.rb(), v);
        for (wi, vi) in w_new.rb_mut().iter_mut().zip(v.iter()) {
            *wi = tau * *wi + alpha * vi;
        }
    }
}

fn dot(x: ColRef<'_, f64>, y: ColRef<'_, f64>) -> f64 {
    x.iter().zip(y.iter()).map(|(a, b)| a * b).sum()
}

/// `y = A x` for the symmetric `A` whose lower triangle is stored (column-major), reading it
/// once: column j adds `A[j:, j]·x[j:]` to `y[j]` and `A[j+1:, j]·x[j]` to `y[j+1:]`. On
/// several threads each takes a range of columns holding an equal share of the triangle.
fn symmetric_times_vector(
    a: MatRef<'_, f64>,
    x: ColRef<'_, f64>,
    mut y: ColMut<'_, f64>,
    par: Par,
) {
    let m = a.nrows();
    let x: Vec<f64> = x.iter().copied().collect();
    let threads = if m < PARALLEL_SYMV_MIN {
        1
    } else {
        par.degree().max(1)
    };
    // Column where thread t starts: the triangle right of it holds (1 − t/threads) of the area.
    let start =
        |t: usize| m - ((m as f64) * (1.0 - t as f64 / threads as f64).sqrt()).round() as usize;
    let partial = |t: usize| {
        let (first, last) = (start(t), start(t + 1));
        let mut out = vec![0.0; m - first];
        let column = |j: usize| {
            &a.col(j)
                .try_as_col_major()
                .expect("column-major storage")
                .as_slice()[j..]
        };
        let mut j = first;
        // Two columns per pass over `out`: column j and j + 1 share rows j + 2.. .
        while j + 1 < last {
            let (c0, c1) = (column(j), column(j + 1));
            let (x0, x1) = (x[j], x[j + 1]);
            let (s0, s1) = column_pair(
                &c0[2..],
                &c1[1..],
                &x[j + 2..],
                x0,
                x1,
                &mut out[j + 2 - first..],
            );
            out[j - first] += c0[0] * x0 + c0[1] * x1 + s0;
            out[j + 1 - first] += c0[1] * x0 + c1[0] * x1 + s1;
            j += 2;
        }
        if j < last {
            let c0 = column(j);
            let (s0, _) = column_pair(
                &c0[1..],
                &c0[1..],
                &x[j + 1..],
                x[j],
                0.0,
                &mut out[j + 1 - first..],
            );
            out[j - first] += c0[0] * x[j] + s0;
        }
        (first, out)
    };
    let parts: Vec<(usize, Vec<f64>)> = if threads == 1 {
        vec![partial(0)]
    } else {
        use rayon::prelude::*;
        (0..threads).into_par_iter().map(partial).collect()
    };
    y.fill(0.0);
    for (first, out) in parts {
        for (yi, oi) in y
            .rb_mut()
            .subrows_mut(first, m - first)
            .iter_mut()
            .zip(&out)
        {
            *yi += oi;
        }
    }
}

/// For two columns `a0`, `a1` over the same rows: returns `(a0·x, a1·x)` and adds
/// `a0·x0 + a1·x1` to `out`, in one pass with independent partial sums (a single running sum
/// would wait on the adder's latency every row). Compiled for AVX2 + FMA where the processor has
/// them.
fn column_pair(a0: &[f64], a1: &[f64], x: &[f64], x0: f64, x1: f64, out: &mut [f64]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features this function was compiled for are present.
        return unsafe { column_pair_avx2(a0, a1, x, x0, x1, out) };
    }
    column_pair_generic(a0, a1, x, x0, x1, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn column_pair_avx2(
    a0: &[f64],
    a1: &[f64],
    x: &[f64],
    x0: f64,
    x1: f64,
    out: &mut [f64],
) -> (f64, f64) {
    column_pair_generic(a0, a1, x, x0, x1, out)
}

#[inline(always)]
fn column_pair_generic(
    a0: &[f64],
    a1: &[f64],
    x: &[f64],
    x0: f64,
    x1: f64,
    out: &mut [f64],
) -> (f64, f64) {
    const LANES: usize = 8;
    let n = x.len();
    let (a0, a1, out) = (&a0[..n], &a1[..n], &mut out[..n]);
    let (mut s0, mut s1) = ([0.0; LANES], [0.0; LANES]);
    let body = n - n % LANES;
    for ((((c0, c1), xs), os), _) in a0[..body]
        .chunks_exact(LANES)
        .zip(a1[..body].chunks_exact(LANES))
        .zip(x[..body].chunks_exact(LANES))
        .zip(out[..body].chunks_exact_mut(LANES))
        .zip(0..)
    {
        for l in 0..LANES {
            s0[l] = c0[l].mul_add(xs[l], s0[l]);
            s1[l] = c1[l].mul_add(xs[l], s1[l]);
            os[l] = c1[l].mul_add(x1, c0[l].mul_add(x0, os[l]));
        }
    }
    let (mut t0, mut t1) = (s0.iter().sum::<f64>(), s1.iter().sum::<f64>());
    for r in body..n {
        t0 = a0[r].mul_add(x[r], t0);
        t1 = a1[r].mul_add(x[r], t1);
        out[r] = a1[r].mul_add(x1, a0[r].mul_add(x0, out[r]));
    }
    (t0, t1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &Mat<f64>) -> Vec<f64> {
        a.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
    }

    /// The eigenvalues `a + 2b cos(kπ/(n+1))`, k = 1..n, of the tridiagonal Toeplitz matrix
    /// with `a` on the diagonal and `b` beside it, sorted.
    fn toeplitz_closed_form(n: usize, a: f64, b: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (1..=n)
            .map(|k| a + 2.0 * b * (k as f64 * std::f64::consts::PI / (n as f64 + 1.0)).cos())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn assert_close(ours: &[f64], expected: &[f64], tolerance: f64, what: &str) {
        assert_eq!(ours.len(), expected.len(), "{what}");
        let scale = expected
            .iter()
            .fold(f64::MIN_POSITIVE, |s, l| s.max(l.abs()));
        for (x, y) in ours.iter().zip(expected) {
            assert!((x - y).abs() <= tolerance * scale, "{what}: {x} vs {y}");
        }
    }

    #[test]
    fn tridiagonal_toeplitz_matches_its_closed_form_at_every_scale() {
        for n in [1, 2, 3, 10, 257] {
            for scale in [1.0, 1e-200, 1e200, -3.5] {
                let (a, b) = (2.0 * scale, -scale);
                let ours = tridiagonal_eigenvalues(vec![a; n], vec![b; n - 1]).unwrap();
                let expected = toeplitz_closed_form(n, a, b);
                assert_close(&ours, &expected, 1e-13, &format!("n = {n}, scale {scale}"));
            }
        }
    }

    #[test]
    fn tridiagonal_matches_faer_on_hard_cases() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let n = 200;
        let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
            (
                "random",
                (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
                (0..n - 1).map(|_| rng.random_range(-1.0..1.0)).collect(),
            ),
            (
                "graded",
                (0..n).map(|i| 0.8f64.powi(i as i32)).collect(),
                (0..n - 1).map(|i| 0.8f64.powi(i as i32) * 0.3).collect(),
            ),
            (
                "Wilkinson W+ (close pairs)",
                (0..n)
                    .map(|i| (i as f64 - (n as f64 - 1.0) / 2.0).abs())
                    .collect(),
                vec![1.0; n - 1],
            ),
            (
                "split into blocks by zeros",
                (0..n).map(|i| (i % 7) as f64).collect(),
                (0..n - 1)
                    .map(|i| if i % 5 == 4 { 0.0 } else { 1.0 })
                    .collect(),
            ),
            ("diagonal, repeated", vec![1.5; n], vec![0.0; n - 1]),
            (
                "decreasing diagonal (reversed blocks)",
                (0..n).map(|i| (n - i) as f64).collect(),
                vec![0.5; n - 1],
            ),
        ];
        for (name, d, e) in cases {
            let dense = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
                0 => d[i],
                1 => e[i.min(j)],
                _ => 0.0,
            });
            let ours = tridiagonal_eigenvalues(d, e).unwrap();
            assert_close(&ours, &reference(&dense), 1e-13, name);
        }
    }

    #[test]
    fn two_by_two_keeps_the_small_eigenvalue_accurate() {
        // [[1e8, 1], [1, 1]]: λ₂ = (1e8 − 1)/λ₁ ≈ 1 − 1e-8; (sum − radius)/2 would lose 8 digits.
        let (big, small) = symmetric_2x2_eigenvalues(1e8, 1.0, 1.0);
        let expected_big = 0.5 * (1e8 + 1.0 + ((1e8f64 - 1.0).powi(2) + 4.0).sqrt());
        assert!((big - expected_big).abs() <= 1e-15 * expected_big);
        let expected = (1e8 - 1.0) / expected_big;
        assert!(
            (small - expected).abs() <= 1e-14 * expected,
            "{small} vs {expected}"
        );
    }

    #[test]
    fn matches_faer_across_the_block_boundaries() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for n in [1, 2, 3, 31, 32, 127, 383, 384, 385, 416, 417, 449, 600] {
            let b = crate::theory::gaussian::standard_normal_matrix(n, n, &mut rng);
            let a = Mat::from_fn(n, n, |i, j| b[(i, j)] + b[(j, i)]);
            let ours = symmetric_eigenvalues(a.clone(), Par::rayon(2)).unwrap();
            let theirs = reference(&a);
            let scale = theirs.iter().fold(1.0f64, |s, l| s.max(l.abs()));
            for (x, y) in ours.iter().zip(&theirs) {
                assert!((x - y).abs() <= 1e-12 * scale, "n = {n}: {x} vs {y}");
            }
        }
    }
}
