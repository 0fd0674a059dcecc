//! One-stage Householder reduction of a symmetric matrix to tridiagonal form, blocked (the
//! scheme of LAPACK's `dsytrd`/`dlatrd`, lower triangle), for the middle orders of
//! [`super::symmetric_eigenvalues`].
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

/// Diagonal and off-diagonal of a tridiagonal matrix orthogonally similar to the symmetric
/// matrix whose lower triangle is stored in `a` (overwritten); `a` is at least 1 × 1.
pub fn tridiagonalise(mut a: Mat<f64>, par: Par) -> (Vec<f64>, Vec<f64>) {
    let n = a.nrows();
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
    (diag, subdiag)
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
                [&c0[2..], &c1[1..]],
                &x[j + 2..],
                [x0, x1],
                &mut out[j + 2 - first..],
            );
            out[j - first] += c0[0] * x0 + c0[1] * x1 + s0;
            out[j + 1 - first] += c0[1] * x0 + c1[0] * x1 + s1;
            j += 2;
        }
        if j < last {
            let c0 = column(j);
            let (s0, _) = column_pair(
                [&c0[1..], &c0[1..]],
                &x[j + 1..],
                [x[j], 0.0],
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

/// For two columns `[a0, a1]` over the same rows: returns `(a0·x, a1·x)` and adds
/// `a0·x0 + a1·x1` to `out` (`[x0, x1]` = `coefficients`), in one pass with independent partial
/// sums (a single running sum would wait on the adder's latency every row). Compiled for AVX2 +
/// FMA where the processor has them.
fn column_pair(a: [&[f64]; 2], x: &[f64], coefficients: [f64; 2], out: &mut [f64]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features this function was compiled for are present.
        return unsafe { column_pair_avx2(a, x, coefficients, out) };
    }
    column_pair_generic(a, x, coefficients, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn column_pair_avx2(
    a: [&[f64]; 2],
    x: &[f64],
    coefficients: [f64; 2],
    out: &mut [f64],
) -> (f64, f64) {
    column_pair_generic(a, x, coefficients, out)
}

#[inline(always)]
fn column_pair_generic(
    [a0, a1]: [&[f64]; 2],
    x: &[f64],
    [x0, x1]: [f64; 2],
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
