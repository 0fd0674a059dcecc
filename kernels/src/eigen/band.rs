//! Two-stage reduction of a symmetric matrix to tridiagonal form (Bischof, Lang & Sun's
//! successive band reduction; LAPACK's `dsytrd_2stage`): first to a band of half-bandwidth
//! [`BANDWIDTH`] by block Householder transformations, whose work is matrix–matrix products that
//! read the trailing matrix once per panel instead of once per column, then from the band to
//! tridiagonal form by chasing bulges down the band, on a copy of the band that fits in cache.
//! Only the tridiagonal matrix is returned: the eigenvalues are all W2 needs.
//!
//! **Stage 1**, panel at column k (b = bandwidth, m = n − k − b rows below the band):
//!
//! ```text
//! A[k+b:, k:k+b] = Q R                    (Householder QR; Q = I − V T Vᵀ, R is the new band block)
//! X = A22 V T,   Z = Tᵀ Vᵀ X,   W = X − ½ V Z
//! A22 ← Qᵀ A22 Q = A22 − W Vᵀ − V Wᵀ       (A22 = A[k+b:, k+b:], lower triangle)
//! ```
//!
//! **Stage 2**, sweep i removes column i's entries below the subdiagonal: a reflector on rows
//! `i+1 .. i+b` zeroes them and is applied from both sides to its diagonal block and from the
//! right to the b rows below, which fills a b × b bulge under the band; the next reflector, on
//! those b rows, zeroes the bulge's first column and moves the bulge b rows down, and so on to the
//! bottom. The rest of each bulge is zeroed by the following sweeps, so the band never grows
//! past 2b − 1 subdiagonals.

use faer::linalg::matmul::matmul as gemm;
use faer::linalg::matmul::triangular::{BlockStructure, matmul as triangular_matmul};
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{dot, reflector};

/// Half-bandwidth of the intermediate band matrix: wider panels make the stage-1 products more
/// efficient and stage 2 (≈ 6 b n² flops in vector-sized pieces) more expensive; 32 was the
/// fastest in total at d = 3072 of 16, 32, 48 and 64 on the 2-core development machine.
pub const BANDWIDTH: usize = 32;

/// Diagonal and off-diagonal of a tridiagonal matrix with the eigenvalues of the symmetric
/// matrix whose lower triangle is stored in `a` (overwritten), by the two-stage reduction of
/// the module documentation with half-bandwidth `b`.
pub fn tridiagonalise(mut a: MatMut<'_, f64>, b: usize, par: Par) -> (Vec<f64>, Vec<f64>) {
    assert!(b >= 1, "a bandwidth of at least one");
    reduce_to_band(a.rb_mut(), b, par);
    tridiagonalise_band(Band::from_lower(a.rb(), b), par.degree())
}

/// Panels per update of the trailing matrix in stage 1 (see [`reduce_to_band_in_groups`]). At
/// d = 3072 and b = 32 the band took 0.82 s with 3 against 0.96 s with 1, 0.91 s with 2 and
/// 0.83 s with 4 (medians of 7, interleaved in one process): the rank-192
/// updates save passes over the trailing matrix, and the corrections grow with the group.
pub const PANELS_PER_UPDATE: usize = 3;

/// Stage 1: `a` (lower triangle; the strict upper triangle may be overwritten) becomes a band
/// matrix with `b` subdiagonals by orthogonal similarity; entries below the band are zeroed.
pub fn reduce_to_band(a: MatMut<'_, f64>, b: usize, par: Par) {
    reduce_to_band_in_groups(a, b, PANELS_PER_UPDATE, par);
}

/// [`reduce_to_band`] with the two-sided update of `group` panels applied to the trailing
/// matrix at once, as one rank-(2·group·b) product, instead of once per panel (LAPACK
/// `dlatrd`'s delayed update, by panels instead of columns): one pass over the trailing matrix
/// fewer per extra panel.
///
/// In the group starting at column k, with `A22 = A[k+b:, k+b:]` and panel p at column
/// k + p·b, whose reflectors act on rows `p·b ..` of `A22`, the true trailing matrix is the
/// stored one minus `P Sᵀ` with `P = [W₀ V₀ W₁ V₁ …]` and `S = [V₀ W₀ V₁ W₁ …]` from the
/// group's earlier panels (each nonzero from its own first row). So panel p first takes
/// `P Sᵀ` off its b columns, and its `A22 V` is the stored matrix's minus `P (Sᵀ V)`. After the
/// group, the rows and columns below its last panel take `P Sᵀ` at once.
pub fn reduce_to_band_in_groups(mut a: MatMut<'_, f64>, b: usize, group: usize, par: Par) {
    assert!(group >= 1, "at least one panel per update");
    let n = a.nrows();
    let mut pair = Mat::<f64>::zeros(n, 2 * b * group);
    let mut swapped = Mat::<f64>::zeros(n, 2 * b * group);
    let mut x = Mat::<f64>::zeros(n, b);
    let mut s_v = Mat::<f64>::zeros(2 * b * group, b);
    let mut small = [(); 3].map(|_| Mat::<f64>::zeros(b, b));
    let mut k = 0;
    while k + b < n {
        let m = n - k - b;
        // Rows are those of A22; column j + b is A22's column j, columns 0..b the first panel.
        let mut block = a.rb_mut().submatrix_mut(k + b, k, m, m + b);
        let mut width = 0;
        // First row (of A22) of the group's last panel so far.
        let mut last = 0;
        for p in 0..group {
            let first = p * b;
            if first >= m {
                break;
            }
            let rows = m - first;
            let r = rows.min(b);
            if p > 0 {
                // The panel's columns, from the diagonal block down, take the pending P Sᵀ.
                gemm(
                    block.rb_mut().submatrix_mut(first - b, first, rows + b, b),
                    Accum::Add,
                    pair.as_ref().submatrix(first - b, 0, rows + b, width),
                    swapped
                        .as_ref()
                        .submatrix(first - b, 0, b, width)
                        .transpose(),
                    -1.0,
                    par,
                );
            }
            let (panel, trailing) = block
                .rb_mut()
                .submatrix_mut(first, first, rows, rows + b)
                .split_at_col_mut(b);
            let (earlier, current) = pair
                .as_mut()
                .submatrix_mut(first, 0, rows, width + 2 * r)
                .split_at_col_mut(width);
            let (mut w, mut v) = current.split_at_col_mut(r);
            let taus = householder_qr(panel, v.rb_mut());
            let mut x = x.as_mut().submatrix_mut(0, 0, rows, r);
            symmetric_times(trailing.rb(), v.rb(), x.rb_mut(), par);
            if width > 0 {
                // The true trailing matrix is the stored one minus P Sᵀ.
                let mut s_v = s_v.as_mut().submatrix_mut(0, 0, width, r);
                gemm(
                    s_v.rb_mut(),
                    Accum::Replace,
                    swapped
                        .as_ref()
                        .submatrix(first, 0, rows, width)
                        .transpose(),
                    v.rb(),
                    1.0,
                    par,
                );
                gemm(x.rb_mut(), Accum::Add, earlier.rb(), s_v.rb(), -1.0, par);
            }
            two_sided_factor(v.rb(), &taus, x.rb(), w.rb_mut(), &mut small, par);
            let mut vw = swapped.as_mut().submatrix_mut(first, width, rows, 2 * r);
            vw.rb_mut().subcols_mut(0, r).copy_from(v.rb());
            vw.rb_mut().subcols_mut(r, r).copy_from(w.rb());
            width += 2 * r;
            last = first;
        }
        // A22 −= P Sᵀ below the last panel (lower triangle).
        let rows = m - last;
        triangular_matmul(
            block.submatrix_mut(last, last + b, rows, rows),
            BlockStructure::TriangularLower,
            Accum::Add,
            pair.as_ref().submatrix(last, 0, rows, width),
            BlockStructure::Rectangular,
            swapped.as_ref().submatrix(last, 0, rows, width).transpose(),
            BlockStructure::Rectangular,
            -1.0,
            par,
        );
        k += last + b;
    }
}

/// `W = X T − ½ V Z` with `Z = Tᵀ Vᵀ X T`, where `I − V T Vᵀ` is the block reflector of the
/// reflectors `V` with factors `taus` and `X = A22 V`: then `Qᵀ A22 Q = A22 − W Vᵀ − V Wᵀ`.
/// `small` is scratch for three b × b matrices.
fn two_sided_factor(
    v: MatRef<'_, f64>,
    taus: &[f64],
    x: MatRef<'_, f64>,
    mut w: MatMut<'_, f64>,
    small: &mut [Mat<f64>; 3],
    par: Par,
) {
    let r = taus.len();
    let [t, vtx, z] = small;
    let (mut t, mut vtx, mut z) = (
        t.as_mut().submatrix_mut(0, 0, r, r),
        vtx.as_mut().submatrix_mut(0, 0, r, r),
        z.as_mut().submatrix_mut(0, 0, r, r),
    );
    block_reflector_factor(v, taus, t.rb_mut(), vtx.rb_mut());
    gemm(w.rb_mut(), Accum::Replace, x, t.rb(), 1.0, par);
    gemm(
        vtx.rb_mut(),
        Accum::Replace,
        v.transpose(),
        w.rb(),
        1.0,
        par,
    );
    gemm(
        z.rb_mut(),
        Accum::Replace,
        t.rb().transpose(),
        vtx.rb(),
        1.0,
        Par::Seq,
    );
    gemm(w, Accum::Add, v, z.rb(), -0.5, par);
}

/// Order of the square tiles of [`symmetric_times`].
const SYMMETRIC_TILE: usize = 256;

/// `x = A v` for the symmetric `a` whose lower triangle is stored, tile by tile: a tile `B`
/// below the diagonal (rows I, columns J) gives `B v_J` to `x_I` and `Bᵀ v_I` to `x_J` while it
/// is in cache, a diagonal tile `D` gives `tril(D) v_J + stril(D)ᵀ v_J`. The columns of tiles
/// are split into `par.degree()` ranges of equal area, one per thread, each summing into its own
/// copy of `x`: one-thread products on tiles ran 15–25% faster than faer's threaded products on
/// whole column blocks on the 2-core development machine.
fn symmetric_times(a: MatRef<'_, f64>, v: MatRef<'_, f64>, mut x: MatMut<'_, f64>, par: Par) {
    let m = a.nrows();
    let tiles = m.div_ceil(SYMMETRIC_TILE);
    let ranges = equal_area_ranges(m, tiles, par.degree().clamp(1, tiles.max(1)));
    x.fill(0.0);
    let Some((first, rest)) = ranges.split_first() else {
        return;
    };
    // The calling thread takes the first range into `x`; each other range, on a thread of its
    // own, a copy of `x`. With one range (one thread) no thread is started.
    let mut partials: Vec<Mat<f64>> = rest.iter().map(|_| Mat::zeros(m, v.ncols())).collect();
    rayon::in_place_scope(|scope| {
        for (columns, partial) in rest.iter().zip(&mut partials) {
            scope.spawn(move |_| symmetric_times_on_tiles(a, v, partial.as_mut(), columns.clone()));
        }
        symmetric_times_on_tiles(a, v, x.rb_mut(), first.clone());
    });
    for partial in &partials {
        x += partial;
    }
}

/// Contiguous ranges of tile columns, `parts` of them, whose tiles of the lower triangle of an
/// m × m matrix cover about equal areas (tile column t has m − t·T rows).
fn equal_area_ranges(m: usize, tiles: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let height = |t: usize| m - t * SYMMETRIC_TILE;
    let total: usize = (0..tiles).map(height).sum();
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut covered) = (0, 0);
    for t in 0..tiles {
        covered += height(t);
        let filled = ranges.len() + 1;
        if covered * parts >= total * filled && filled < parts {
            ranges.push(start..t + 1);
            start = t + 1;
        }
    }
    if start < tiles {
        ranges.push(start..tiles);
    }
    ranges
}

/// The part of [`symmetric_times`] from the tiles in tile columns `columns`, added to `x` on
/// this thread.
fn symmetric_times_on_tiles(
    a: MatRef<'_, f64>,
    v: MatRef<'_, f64>,
    mut x: MatMut<'_, f64>,
    columns: std::ops::Range<usize>,
) {
    let m = a.nrows();
    for tile_column in columns {
        let j0 = tile_column * SYMMETRIC_TILE;
        let width = SYMMETRIC_TILE.min(m - j0);
        let v_j = v.subrows(j0, width);
        let diagonal = a.submatrix(j0, j0, width, width);
        for (lhs, structure) in [
            (diagonal, BlockStructure::TriangularLower),
            (diagonal.transpose(), BlockStructure::StrictTriangularUpper),
        ] {
            triangular_matmul(
                x.rb_mut().subrows_mut(j0, width),
                BlockStructure::Rectangular,
                Accum::Add,
                lhs,
                structure,
                v_j,
                BlockStructure::Rectangular,
                1.0,
                Par::Seq,
            );
        }
        for i0 in (j0 + width..m).step_by(SYMMETRIC_TILE) {
            let height = SYMMETRIC_TILE.min(m - i0);
            let tile = a.submatrix(i0, j0, height, width);
            let (mut x_j, mut x_i) = x.rb_mut().split_at_row_mut(i0);
            gemm(
                x_i.rb_mut().subrows_mut(0, height),
                Accum::Add,
                tile,
                v_j,
                1.0,
                Par::Seq,
            );
            gemm(
                x_j.rb_mut().subrows_mut(j0, width),
                Accum::Add,
                tile.transpose(),
                v.subrows(i0, height),
                1.0,
                Par::Seq,
            );
        }
    }
}

/// Householder QR of the m × b `panel` in place: R on and above the diagonal, zeros below; the
/// reflectors go to `v` (m × r, unit lower trapezoidal) and their factors τ (H = I − τ v vᵀ,
/// applied H₀ first) are returned.
fn householder_qr(mut panel: MatMut<'_, f64>, mut v: MatMut<'_, f64>) -> Vec<f64> {
    let (m, cols) = (panel.nrows(), panel.ncols());
    (0..v.ncols())
        .map(|j| {
            let mut vj = v.rb_mut().col_mut(j);
            vj.rb_mut().subrows_mut(0, j).fill(0.0);
            let vj = as_slice(vj.subrows_mut(j, m - j));
            let tau = reflector(
                as_slice(panel.rb_mut().col_mut(j).subrows_mut(j, m - j)),
                vj,
            );
            for c in j + 1..cols {
                apply_left(
                    as_slice(panel.rb_mut().col_mut(c).subrows_mut(j, m - j)),
                    vj,
                    tau,
                );
            }
            tau
        })
        .collect()
}

/// A column of a column-major matrix as a slice.
fn as_slice(column: faer::ColMut<'_, f64>) -> &mut [f64] {
    column
        .try_as_col_major_mut()
        .expect("column-major storage")
        .as_slice_mut()
}

/// The upper triangular T with `H₀ H₁ ⋯ H_{r−1} = I − V T Vᵀ` (LAPACK `dlarft`, forward,
/// columnwise): `T[j, j] = τ_j`, `T[:j, j] = −τ_j T[:j, :j] (V[:, :j]ᵀ v_j)`. `gram` is scratch.
fn block_reflector_factor(
    v: MatRef<'_, f64>,
    taus: &[f64],
    mut t: MatMut<'_, f64>,
    mut gram: MatMut<'_, f64>,
) {
    let r = taus.len();
    gemm(
        gram.rb_mut(),
        Accum::Replace,
        v.transpose(),
        v,
        1.0,
        Par::Seq,
    );
    t.fill(0.0);
    for j in 0..r {
        t[(j, j)] = taus[j];
        for i in 0..j {
            let s: f64 = (i..j).map(|l| t[(i, l)] * gram[(l, j)]).sum();
            t[(i, j)] = -taus[j] * s;
        }
    }
}

/// A symmetric band matrix's lower part with room for the bulges of stage 2: column j holds
/// rows `j .. j + 2b` (clipped at n) at `data[j·2b ..]`, so every column segment the reflectors
/// touch is a contiguous slice.
pub struct Band {
    data: Vec<f64>,
    n: usize,
    b: usize,
}

impl Band {
    /// Copies the lower band (b subdiagonals) of `a`.
    pub fn from_lower(a: MatRef<'_, f64>, b: usize) -> Band {
        let (n, width) = (a.nrows(), 2 * b);
        let mut data = vec![0.0; n * width];
        for j in 0..n {
            for i in j..(j + b + 1).min(n) {
                data[j * width + (i - j)] = a[(i, j)];
            }
        }
        Band { data, n, b }
    }

    fn entry(&self, i: usize, j: usize) -> f64 {
        self.data[j * 2 * self.b + (i - j)]
    }
}

/// Stage 2 on `threads` threads: the diagonal and off-diagonal of a tridiagonal matrix
/// orthogonally similar to `band` (bulge chasing, module docs).
///
/// Sweeps are dealt round-robin to the threads and pipelined: step s of sweep i starts once
/// sweep i − 1 has done its steps 0 ..= s + 2. Step s of sweep i works on columns
/// `[r − b, r + b)` and rows `[r, r + 2b)`, r = i + 1 + s·b, which meets those of sweep i − 1
/// only up to its step s + 2; so running steps never share an entry, and the result is the
/// sequential one, bit for bit.
pub fn tridiagonalise_band(mut band: Band, threads: usize) -> (Vec<f64>, Vec<f64>) {
    let (n, b) = (band.n, band.b);
    let sweeps = n.saturating_sub(2);
    let progress: Vec<Progress> = (0..sweeps).map(|_| Progress::default()).collect();
    let shared = SharedBand {
        data: band.data.as_mut_ptr(),
        len: band.data.len(),
        b,
    };
    let run = |first: usize| {
        let mut scratch = vec![0.0; 2 * b];
        for i in (first..sweeps).step_by(threads.max(1)) {
            let wait = |s: usize| {
                if i > 0 {
                    progress[i - 1].wait_for(s + 3);
                }
            };
            let done = |s: usize| progress[i].set(s + 1);
            // SAFETY: `wait` holds each step back until the steps of sweep i − 1 that share
            // entries with it are done (see above), and sweep i + 1 waits for this sweep the
            // same way, so no two threads touch an entry at once.
            let job = Sweep {
                band: &shared,
                n,
                i,
                wait,
                done,
            };
            unsafe { sweep(job, &mut scratch) };
            progress[i].set(usize::MAX);
        }
    };
    if threads <= 1 || sweeps < 2 {
        run(0);
    } else {
        std::thread::scope(|scope| {
            for t in 1..threads.min(sweeps) {
                let run = &run;
                scope.spawn(move || run(t));
            }
            run(0);
        });
    }
    let diag = (0..n).map(|j| band.entry(j, j)).collect();
    let offdiag = (0..n.saturating_sub(1))
        .map(|j| band.entry(j + 1, j))
        .collect();
    (diag, offdiag)
}

/// Steps done by one sweep of stage 2, on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Progress(AtomicUsize);

impl Progress {
    fn set(&self, steps: usize) {
        self.0.store(steps, Ordering::Release);
    }

    /// Spins (yielding now and then) until at least `steps` steps are done.
    fn wait_for(&self, steps: usize) {
        let mut spins = 0u32;
        while self.0.load(Ordering::Acquire) < steps {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// The band's storage as the threads of stage 2 share it.
struct SharedBand {
    data: *mut f64,
    len: usize,
    b: usize,
}

// SAFETY: the threads only reach the storage through `column`, under its contract.
unsafe impl Sync for SharedBand {}

impl SharedBand {
    /// Rows `rows` of column j (`j ≤ rows.start`, `rows.end ≤ j + 2b`).
    ///
    /// # Safety
    /// No other live reference, on this thread or another, may cover these entries.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn column(&self, j: usize, rows: std::ops::Range<usize>) -> &mut [f64] {
        let width = 2 * self.b;
        assert!(j <= rows.start && rows.start <= rows.end && rows.end <= j + width);
        let start = j * width + (rows.start - j);
        assert!(start + rows.len() <= self.len);
        // SAFETY: in bounds (checked); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(start), rows.len()) }
    }
}

/// Sweep i of stage 2 over a band of order n, calling `wait(s)` before and `done(s)` after
/// step s.
struct Sweep<'a, W, D> {
    band: &'a SharedBand,
    n: usize,
    i: usize,
    wait: W,
    done: D,
}

/// Runs `job`, compiled for AVX2 where the processor has it; `scratch` holds 2b values.
///
/// # Safety
/// While a step runs, no other thread may touch the entries it works on (the schedule of
/// [`tridiagonalise_band`]).
unsafe fn sweep<W: Fn(usize), D: Fn(usize)>(job: Sweep<'_, W, D>, scratch: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the feature is present; the rest is the caller's contract.
        return unsafe { sweep_avx2(job, scratch) };
    }
    // SAFETY: the caller's contract.
    unsafe { sweep_generic(job, scratch) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sweep_avx2<W: Fn(usize), D: Fn(usize)>(job: Sweep<'_, W, D>, scratch: &mut [f64]) {
    // SAFETY: the caller's contract.
    unsafe { sweep_generic(job, scratch) }
}

/// Step s: the reflector from column `c`, rows `r .. r + len` (c = i, r = i + 1 for s = 0;
/// then c = previous r, r += b), applied on the left to columns `c + 1 .. r`, on both sides to
/// the diagonal block at r, and on the right to the b rows below it.
#[inline(always)]
unsafe fn sweep_generic<W: Fn(usize), D: Fn(usize)>(job: Sweep<'_, W, D>, scratch: &mut [f64]) {
    let Sweep {
        band,
        n,
        i,
        wait,
        done,
    } = job;
    let b = band.b;
    let (v, y) = scratch.split_at_mut(b);
    let (mut c, mut r, mut s) = (i, i + 1, 0);
    while r < n {
        wait(s);
        let len = b.min(n - r);
        let v = &mut v[..len];
        // SAFETY (every `column` below): one slice at a time on this thread; other threads
        // are kept off this step's entries by the caller's contract.
        let tau = reflector(unsafe { band.column(c, r..r + len) }, v);
        let v = &*v;
        if tau != 0.0 {
            for j in c + 1..r {
                apply_left(unsafe { band.column(j, r..r + len) }, v, tau);
            }
            // D ← H D H: w = τ D v, w −= ½ τ (wᵀ v) v, D −= v wᵀ + w vᵀ (lower triangle).
            let w = &mut y[..len];
            w.fill(0.0);
            for j in 0..len {
                let column = unsafe { band.column(r + j, r + j..r + len) };
                w[j] += column[0] * v[j] + dot(&column[1..], &v[j + 1..]);
                axpy(v[j], &column[1..], &mut w[j + 1..]);
            }
            w.iter_mut().for_each(|x| *x *= tau);
            let alpha = -0.5 * tau * dot(w, v);
            axpy(alpha, v, w);
            for j in 0..len {
                let column = unsafe { band.column(r + j, r + j..r + len) };
                axpy(-w[j], &v[j..], column);
                axpy(-v[j], &w[j..], column);
            }
            // B ← B H for rows r + len .. r + len + b: y = B v, B −= τ y vᵀ.
            let below = (r + len)..(r + len + b).min(n);
            let y = &mut y[..below.len()];
            y.fill(0.0);
            for (j, &vj) in v.iter().enumerate() {
                axpy(vj, unsafe { band.column(r + j, below.clone()) }, y);
            }
            for (j, &vj) in v.iter().enumerate() {
                axpy(-tau * vj, y, unsafe { band.column(r + j, below.clone()) });
            }
        }
        done(s);
        (c, r, s) = (r, r + b, s + 1);
    }
}

/// `x ← H x = x − τ (vᵀ x) v`.
#[inline(always)]
fn apply_left(x: &mut [f64], v: &[f64], tau: f64) {
    let s = tau * dot(v, x);
    axpy(-s, v, x);
}

/// `y += α x`.
#[inline(always)]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += alpha * xi);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn random_symmetric(n: usize, seed: u64) -> Mat<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let g = crate::test_support::standard_normal_matrix(n, n, &mut rng);
        Mat::from_fn(n, n, |i, j| g[(i, j)] + g[(j, i)])
    }

    #[test]
    fn symmetric_times_matches_the_dense_product_and_ignores_the_upper_triangle() {
        for m in [
            1,
            SYMMETRIC_TILE,
            SYMMETRIC_TILE + 1,
            2 * SYMMETRIC_TILE + 89,
            7 * SYMMETRIC_TILE + 3,
        ] {
            let a = random_symmetric(m, 21);
            let lower_only = Mat::from_fn(m, m, |i, j| if i >= j { a[(i, j)] } else { f64::NAN });
            let v = Mat::from_fn(m, 5, |i, j| ((i * 7 + j * 3) % 13) as f64 - 6.0);
            let expected = &a * &v;
            for par in [Par::Seq, Par::rayon(2), Par::rayon(3)] {
                let mut x = Mat::<f64>::from_fn(m, 5, |_, _| f64::NAN);
                symmetric_times(lower_only.as_ref(), v.as_ref(), x.as_mut(), par);
                for i in 0..m {
                    for j in 0..5 {
                        let scale = 1.0 + expected[(i, j)].abs();
                        assert!(
                            (x[(i, j)] - expected[(i, j)]).abs() <= 1e-12 * scale * m as f64,
                            "m = {m}, {par:?}, ({i}, {j}): {} vs {}",
                            x[(i, j)],
                            expected[(i, j)]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn equal_area_ranges_cover_every_tile_column_once_in_balanced_parts() {
        for (m, parts) in [
            (1usize, 2),
            (300, 2),
            (3000, 1),
            (3000, 2),
            (3000, 3),
            (3072, 2),
            (600, 5),
        ] {
            let tiles = m.div_ceil(SYMMETRIC_TILE);
            let ranges = equal_area_ranges(m, tiles, parts);
            assert!(ranges.len() <= parts, "m = {m}: {ranges:?}");
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, tiles);
            assert!(
                ranges
                    .windows(2)
                    .all(|w| w[0].end == w[1].start && !w[1].is_empty())
            );
            let area = |r: &std::ops::Range<usize>| -> usize {
                r.clone().map(|t| m - t * SYMMETRIC_TILE).sum()
            };
            let total = area(&(0..tiles));
            if tiles >= 4 * parts {
                // Each part within one tile column's height of an equal share.
                for r in &ranges {
                    assert!(
                        area(r).abs_diff(total / parts) <= m,
                        "m = {m}, parts = {parts}: {ranges:?}"
                    );
                }
            }
        }
    }

    fn sorted_eigenvalues(a: &Mat<f64>) -> Vec<f64> {
        a.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
    }

    fn assert_same_spectrum(mut ours: Vec<f64>, expected: &[f64], what: &str) {
        ours.sort_by(f64::total_cmp);
        let scale = expected.iter().fold(1.0f64, |s, l| s.max(l.abs()));
        for (x, y) in ours.iter().zip(expected) {
            assert!((x - y).abs() <= 1e-12 * scale, "{what}: {x} vs {y}");
        }
    }

    #[test]
    fn stage_one_gives_a_band_matrix_with_the_same_eigenvalues() {
        for (n, b) in [(50, 8), (64, 16), (33, 32), (40, 1), (70, 33)] {
            let a = random_symmetric(n, n as u64);
            let mut reduced = a.clone();
            reduce_to_band(reduced.as_mut(), b, Par::Seq);
            for j in 0..n {
                for i in j + b + 1..n {
                    assert_eq!(
                        reduced[(i, j)],
                        0.0,
                        "n = {n}, b = {b}: ({i}, {j}) below the band"
                    );
                }
            }
            let full = Mat::from_fn(n, n, |i, j| reduced[(i.max(j), i.min(j))]);
            let what = format!("stage 1, n = {n}, b = {b}");
            assert_same_spectrum(sorted_eigenvalues(&full), &sorted_eigenvalues(&a), &what);
        }
    }

    #[test]
    fn delayed_updates_give_the_band_of_panel_by_panel_updates() {
        // The reflectors are the same whichever way the trailing matrix is kept up to date, so
        // the band matrices agree entry by entry; groups end inside the matrix, at its end, and
        // on a last panel shorter than b.
        for (n, b) in [(50, 8), (64, 16), (70, 33), (100, 7), (41, 4)] {
            let a = random_symmetric(n, 300 + n as u64);
            let mut expected = a.clone();
            reduce_to_band_in_groups(expected.as_mut(), b, 1, Par::Seq);
            let scale = (0..n).map(|j| expected[(j, j)].abs()).fold(1.0, f64::max);
            for group in [2, 3, 5] {
                let mut grouped = a.clone();
                reduce_to_band_in_groups(grouped.as_mut(), b, group, Par::rayon(2));
                for j in 0..n {
                    for i in j..n {
                        let (x, y) = (grouped[(i, j)], expected[(i, j)]);
                        assert!(
                            (x - y).abs() <= 1e-12 * scale,
                            "n = {n}, b = {b}, {group} panels per update: ({i}, {j}) {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn two_stages_give_a_tridiagonal_matrix_with_the_same_eigenvalues() {
        for (n, b) in [
            (1, 4),
            (2, 4),
            (3, 1),
            (5, 4),
            (50, 8),
            (97, 16),
            (130, 32),
            (200, 48),
        ] {
            let a = random_symmetric(n, 100 + n as u64);
            let (d, e) = tridiagonalise(a.clone().as_mut(), b, Par::rayon(2));
            let t = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
                0 => d[i],
                1 => e[i.min(j)],
                _ => 0.0,
            });
            let what = format!("n = {n}, b = {b}");
            assert_same_spectrum(sorted_eigenvalues(&t), &sorted_eigenvalues(&a), &what);
        }
    }

    #[test]
    fn pipelined_threads_give_the_sequential_result_bit_for_bit() {
        for (n, b) in [(3, 2), (40, 3), (161, 8), (300, 32)] {
            let mut a = random_symmetric(n, 7 + n as u64);
            reduce_to_band(a.as_mut(), b, Par::Seq);
            let sequential = tridiagonalise_band(Band::from_lower(a.as_ref(), b), 1);
            for threads in [2, 3, 5] {
                let parallel = tridiagonalise_band(Band::from_lower(a.as_ref(), b), threads);
                assert_eq!(parallel, sequential, "n = {n}, b = {b}, {threads} threads");
            }
        }
    }

    #[test]
    fn a_matrix_that_is_already_banded_or_diagonal_keeps_its_eigenvalues() {
        // Zero panels give zero reflectors (τ = 0): the identity, not a division by zero.
        let n = 90;
        for bandwidth in [0, 3] {
            let a = Mat::from_fn(n, n, |i, j| {
                if i.abs_diff(j) <= bandwidth {
                    1.0 + ((i * 7 + j * 7) % 13) as f64
                } else {
                    0.0
                }
            });
            let (d, e) = tridiagonalise(a.clone().as_mut(), 8, Par::Seq);
            let t = Mat::from_fn(n, n, |i, j| match i.abs_diff(j) {
                0 => d[i],
                1 => e[i.min(j)],
                _ => 0.0,
            });
            let what = format!("bandwidth {bandwidth}");
            assert_same_spectrum(sorted_eigenvalues(&t), &sorted_eigenvalues(&a), &what);
        }
    }
}
