//! Gaussian class conditionals and their closed-form Wasserstein-2 distances.
//!
//! The paper validates Theorem 1 on Gaussian class conditionals (Appendix A.5, Figure 4) because
//! there the Wasserstein-2 distance has a closed form (Givens & Shortt, 1984):
//!
//! ```text
//! W2(N(m1, S1), N(m2, S2))² = ‖m1 − m2‖² + tr S1 + tr S2 − 2 tr (S2^½ S1 S2^½)^½
//! ```
//!
//! Every [`Gaussian`] keeps a factor `F` with `F Fᵀ = S`: the Cholesky factor when `S` is
//! positive definite, otherwise `V diag(√λ₊)` from its eigendecomposition, so singular covariances
//! (point masses included) are exact too. With factors `F1`, `F2`, the non-zero eigenvalues of
//! `S2^½ S1 S2^½` are those of `Gᵀ G` with `G = F2ᵀ F1` (formed as `L1ᵀ S2 L1` when both
//! factors are Cholesky factors), which is what [`wasserstein2`] takes the square roots of.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef, Par, Side};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use proxyrobust_kernels::{Asymmetry, add_transpose};

/// Relative tolerance for the symmetry check: `|S_ij − S_ji| ≤ 1e-10 · max|S|`.
pub const SYMMETRY_TOLERANCE: f64 = 1e-10;
/// Relative tolerance for positive semidefiniteness: `λ_min ≥ −1e-10 · max(|λ_max|, 1e-300)`.
pub const PSD_TOLERANCE: f64 = 1e-10;
/// Absolute tolerance when comparing class probabilities of two labeled distributions.
pub const PROBABILITY_TOLERANCE: f64 = 1e-9;
/// Below this dimension the factorisations and eigenvalues run on one thread: on the 2-core
/// development machine, threading costs more than it saves under d ≈ 1024 (docs/benchmarks.md).
pub const PARALLEL_MIN_DIM: usize = 1024;

/// faer's parallelism for a problem of dimension `d`.
fn parallelism(d: usize) -> Par {
    if d < PARALLEL_MIN_DIM {
        Par::Seq
    } else {
        faer::get_global_parallelism()
    }
}

/// A multivariate normal distribution `N(mean, cov)` with a validated covariance.
#[derive(Clone, Debug)]
pub struct Gaussian {
    mean: Vec<f64>,
    cov: Pooled,
    factor: Factor,
}

/// A matrix `F` with `F Fᵀ = cov`, remembering whether it is lower triangular and which columns
/// are non-zero (for a singular covariance, the eigenvectors of its non-zero eigenvalues).
#[derive(Clone, Debug)]
struct Factor {
    matrix: Pooled,
    structure: BlockStructure,
    columns: std::ops::Range<usize>,
}

impl Gaussian {
    /// Builds `N(mean, cov)`, checking that values are finite, dimensions match, `cov` is
    /// symmetric within [`SYMMETRY_TOLERANCE`] and positive semidefinite within [`PSD_TOLERANCE`].
    /// The covariance is symmetrised, `(S + Sᵀ)/2`, before it is stored.
    pub fn new(mean: Vec<f64>, cov: Mat<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            return Err(Error::invalid(
                "mean",
                "at least one dimension, got an empty vector",
            ));
        }
        if cov.nrows() != d || cov.ncols() != d {
            return Err(Error::invalid(
                "cov",
                format!(
                    "shape ({d}, {d}) to match mean of length {d}, got ({}, {})",
                    cov.nrows(),
                    cov.ncols()
                ),
            ));
        }
        if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "mean",
                format!("finite values, entry {i} is {}", mean[i]),
            ));
        }
        let cov = symmetrised(Pooled(cov))?;
        let factor = Factor::of(&cov)?;
        Ok(Gaussian { mean, cov, factor })
    }

    /// The point mass at `mean`: `N(mean, 0)`.
    pub fn point_mass(mean: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        Gaussian::new(mean, Mat::zeros(d, d))
    }

    /// Dimension `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Mean vector.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Covariance matrix (symmetric, positive semidefinite).
    pub fn cov(&self) -> MatRef<'_, f64> {
        self.cov.as_ref()
    }

    /// A factor `F` with `F Fᵀ = cov` (lower triangular when `cov` is positive definite).
    pub fn factor(&self) -> MatRef<'_, f64> {
        self.factor.matrix.as_ref()
    }

    /// Maps standard normal draws to this Gaussian: row `i` of the result is `mean + F zᵢ`,
    /// with `zᵢ` row `i` of `z` (n × d). Feeding the same `z` to two Gaussians couples them.
    pub fn transform_standard_normal(&self, z: MatRef<'_, f64>) -> Mat<f64> {
        let mut x = Mat::<f64>::zeros(z.nrows(), self.dim());
        matmul(
            x.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            z,
            BlockStructure::Rectangular,
            self.factor.matrix.transpose(),
            self.factor.structure.transposed(),
            1.0,
            faer::get_global_parallelism(),
        );
        for j in 0..self.dim() {
            let m = self.mean[j];
            x.col_mut(j).iter_mut().for_each(|v| *v += m);
        }
        x
    }

    /// `n` independent samples as the rows of an n × d matrix.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Mat<f64> {
        self.transform_standard_normal(standard_normal_matrix(n, self.dim(), rng).as_ref())
    }
}

/// An n × d matrix of independent standard normal draws.
pub fn standard_normal_matrix<R: Rng + ?Sized>(n: usize, d: usize, rng: &mut R) -> Mat<f64> {
    let mut z = Mat::<f64>::zeros(n, d);
    // Row-major fill so the draws for sample i are contiguous in the stream, whatever n is.
    for i in 0..n {
        for j in 0..d {
            z[(i, j)] = StandardNormal.sample(rng);
        }
    }
    z
}

trait Transposed {
    fn transposed(self) -> Self;
}

impl Transposed for BlockStructure {
    fn transposed(self) -> Self {
        match self {
            BlockStructure::TriangularLower => BlockStructure::TriangularUpper,
            BlockStructure::TriangularUpper => BlockStructure::TriangularLower,
            other => other,
        }
    }
}

/// Checks finiteness and symmetry within [`SYMMETRY_TOLERANCE`] and replaces `cov` by
/// `(cov + covᵀ)/2`, in place ([`proxyrobust_kernels::add_transpose`]).
fn symmetrised(mut cov: Pooled) -> Result<Pooled> {
    let d = cov.nrows();
    let scale = cov
        .col_iter()
        .map(|column| {
            largest_magnitude(
                column
                    .try_as_col_major()
                    .expect("column-major storage")
                    .as_slice(),
            )
        })
        .fold(0.0f64, f64::max);
    if !scale.is_finite() {
        let (j, i) = (0..d)
            .flat_map(|j| (0..d).map(move |i| (j, i)))
            .find(|&(j, i)| !cov[(i, j)].is_finite())
            .expect("a non-finite entry");
        return Err(Error::invalid(
            "cov",
            format!("finite values, entry ({i}, {j}) is {}", cov[(i, j)]),
        ));
    }
    let tolerance = SYMMETRY_TOLERANCE * scale;
    if let Err(Asymmetry { row: i, col: j }) = add_transpose(cov.as_mut(), 0.5, true, tolerance) {
        return Err(Error::invalid(
            "cov",
            format!(
                "a symmetric matrix, but cov[{i},{j}] = {} and cov[{j},{i}] = {}",
                cov[(i, j)],
                cov[(j, i)]
            ),
        ));
    }
    Ok(cov)
}

/// `max |x|` over `values`, infinite if any value is infinite or NaN. Eight independent lanes
/// that vectorise: `max` for the magnitude, and a running sum of `x · 0`, which is NaN as soon
/// as one `x` is not finite.
fn largest_magnitude(values: &[f64]) -> f64 {
    const LANES: usize = 8;
    let (mut largest, mut zero) = ([0.0f64; LANES], [0.0f64; LANES]);
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            largest[l] = largest[l].max(chunk[l].abs());
            zero[l] += chunk[l] * 0.0;
        }
    }
    if !tail.iter().chain(&zero).all(|v| v.is_finite()) {
        return f64::INFINITY;
    }
    tail.iter()
        .map(|v| v.abs())
        .chain(largest)
        .fold(0.0, f64::max)
}

impl Factor {
    /// Cholesky when the covariance is numerically positive definite, otherwise the eigen-factor
    /// `V diag(√λ)` over the eigenvalues above `d·ε·λ_max` (the others are round-off of zeros),
    /// after checking that no eigenvalue is below `−PSD_TOLERANCE · λ_max`.
    fn of(cov: &Mat<f64>) -> Result<Self> {
        let d = cov.nrows();
        let round_off = d as f64 * f64::EPSILON;
        if let Some(l) = cholesky_lower(cov) {
            let pivots = (0..d).map(|i| l[(i, i)] * l[(i, i)]);
            let largest = (0..d).map(|i| cov[(i, i)]).fold(0.0, f64::max);
            if pivots.fold(f64::INFINITY, f64::min) > 1e3 * round_off * largest {
                return Ok(Factor {
                    matrix: l,
                    structure: BlockStructure::TriangularLower,
                    columns: 0..d,
                });
            }
        }
        let evd = cov.self_adjoint_eigen(Side::Lower).map_err(|e| {
            Error::invalid("cov", format!("an eigendecomposition, which failed: {e:?}"))
        })?;
        let s = evd.S().column_vector();
        let lmax = (0..d).map(|i| s[i].abs()).fold(0.0f64, f64::max);
        let lmin = (0..d).map(|i| s[i]).fold(f64::INFINITY, f64::min);
        if lmin < -PSD_TOLERANCE * lmax.max(1e-300) {
            return Err(Error::invalid(
                "cov",
                format!(
                    "a positive semidefinite matrix, but its smallest eigenvalue is {lmin:.6e} (largest {lmax:.6e})"
                ),
            ));
        }
        // Eigenvalues come in non-decreasing order: the kept ones are the last columns.
        let first_kept = (0..d).find(|&i| s[i] > round_off * lmax).unwrap_or(d);
        let u = evd.U();
        let matrix = Pooled(Mat::from_fn(d, d, |i, j| {
            if j >= first_kept {
                u[(i, j)] * s[j].sqrt()
            } else {
                0.0
            }
        }));
        Ok(Factor {
            matrix,
            structure: BlockStructure::Rectangular,
            columns: first_kept..d,
        })
    }

    /// Whether this is the (full-rank, lower triangular) Cholesky factor.
    fn is_cholesky(&self) -> bool {
        self.structure == BlockStructure::TriangularLower
    }

    /// The non-zero columns, `d × rank`.
    fn nonzero(&self) -> MatRef<'_, f64> {
        self.matrix.subcols(self.columns.start, self.columns.len())
    }
}

/// How W2's trace term `Σ √λᵢ` of the Gram matrix is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceRoute {
    /// [`proxyrobust_kernels::trace_sqrt`]: tridiagonalisation, then a quadrature of the
    /// Stieltjes transform (eigenvalues where the matrix is not positive definite).
    #[default]
    Kernels,
    /// faer's dense symmetric eigenvalues, the reference the kernels are tested against.
    Faer,
}

/// `Σ √max(λᵢ, 0)` over the eigenvalues of the symmetric matrix whose lower triangle is stored
/// in `a` (overwritten), by `route`.
fn symmetric_trace_sqrt(a: &mut Mat<f64>, par: Par, route: TraceRoute) -> Result<f64> {
    let failed = |e: &dyn std::fmt::Debug| {
        Error::invalid(
            "covariance product",
            format!("an eigendecomposition, which failed: {e:?}"),
        )
    };
    match route {
        TraceRoute::Kernels => {
            proxyrobust_kernels::trace_sqrt(a.as_mut(), par).map_err(|e| failed(&e))
        }
        TraceRoute::Faer => Ok(a
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|e| failed(&e))?
            .iter()
            .map(|l| l.max(0.0).sqrt())
            .sum()),
    }
}

/// The lower Cholesky factor (strict upper triangle zeroed), or `None` if a pivot is not
/// positive. Factorises a single copy of `cov` in place.
fn cholesky_lower(cov: &Mat<f64>) -> Option<Pooled> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let d = cov.nrows();
    let par = parallelism(d);
    let mut l = Pooled::copy_of(cov.as_ref());
    let mut buffer = MemBuffer::new(cholesky_in_place_scratch::<f64>(d, par, Default::default()));
    cholesky_in_place(
        l.as_mut(),
        Default::default(),
        par,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .ok()?;
    for j in 1..d {
        l.col_mut(j).subrows_mut(0, j).fill(0.0);
    }
    Some(l)
}

/// Closed-form Wasserstein-2 distance between two Gaussians (Givens & Shortt, 1984):
/// `W2² = ‖m1 − m2‖² + tr S1 + tr S2 − 2 tr (S2^½ S1 S2^½)^½`.
///
/// The trace term is `Σ √λᵢ(Gᵀ G)` with `G = F2ᵀ F1` built from the stored factors, which avoids
/// matrix square roots and is exact for singular covariances. Tiny negative round-off in the
/// eigenvalues and in `W2²` is clamped to zero. Used for `cwd` in Definition 2 and Figure 4.
pub fn wasserstein2(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    Ok(wasserstein2_squared(a, b)?.sqrt())
}

/// `W2²` of [`wasserstein2`].
pub fn wasserstein2_squared(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    wasserstein2_squared_by(a, b, TraceRoute::Kernels)
}

/// [`wasserstein2_squared`] with the trace term computed by `route`.
pub fn wasserstein2_squared_by(a: &Gaussian, b: &Gaussian, route: TraceRoute) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::invalid(
            "dimensions",
            format!(
                "two Gaussians of the same dimension, got {} and {}",
                a.dim(),
                b.dim()
            ),
        ));
    }
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let trace_a: f64 = (0..a.dim()).map(|i| a.cov[(i, i)]).sum();
    let trace_b: f64 = (0..b.dim()).map(|i| b.cov[(i, i)]).sum();
    let cross = trace_sqrt_product(a, b, route)?;
    Ok((mean_term + trace_a + trace_b - 2.0 * cross).max(0.0))
}

/// `tr (S2^½ S1 S2^½)^½ = Σ √λᵢ(Gᵀ G)`, `G = F2ᵀ F1`, from the factors of `a` (S1 = F1 F1ᵀ)
/// and `b` (S2 = F2 F2ᵀ).
fn trace_sqrt_product(a: &Gaussian, b: &Gaussian, route: TraceRoute) -> Result<f64> {
    let mut gram = if a.factor.is_cholesky() && b.factor.is_cholesky() {
        congruence(a.factor.matrix.as_ref(), b.cov.as_ref())
    } else {
        match smaller_gram(&a.factor, &b.factor) {
            Some(gram) => gram,
            None => return Ok(0.0),
        }
    };
    let par = parallelism(gram.nrows());
    symmetric_trace_sqrt(&mut gram, par, route)
}

/// The lower triangle of `Lᵀ S L` for a lower triangular `L` (S1 = L Lᵀ) and a symmetric `S`
/// (= S2): the Gram matrix `Gᵀ G = L1ᵀ F2 F2ᵀ L1` when both factors are Cholesky factors.
///
/// With `Ŝ = tril(S) − ½ diag(S)`, so that `S = Ŝ + Ŝᵀ`, the congruence is `P + Pᵀ` for
/// `P = Lᵀ (Ŝ L)`: `Ŝ L` is lower triangular (d³/3 flops) and `Lᵀ (Ŝ L)` an upper times a lower
/// triangular matrix (2/3 d³), d³ flops in all (LAPACK's `dsygst` count) against 4/3 d³ for
/// `Lᵀ (S L)`. The strict upper triangle is left holding `P`
/// (inside the 4 × 4 blocks on the diagonal, possibly `P + Pᵀ`).
fn congruence(l: MatRef<'_, f64>, s: MatRef<'_, f64>) -> Pooled {
    let d = l.nrows();
    let par = parallelism(d);
    let mut half_product = Pooled::zeros(d, d);
    matmul(
        half_product.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        s,
        BlockStructure::TriangularLower,
        l,
        BlockStructure::TriangularLower,
        1.0,
        par,
    );
    // Ŝ L = tril(S) L − ½ diag(S) L: row i loses ½ S_ii L[i, :] (row i of L ends at column i).
    for j in 0..d {
        let (z, l) = (half_product.col_mut(j), l.col(j));
        for (i, (z, l)) in z.iter_mut().zip(l.iter()).enumerate().skip(j) {
            *z -= 0.5 * s[(i, i)] * l;
        }
    }
    let mut gram = Pooled::zeros(d, d);
    matmul(
        gram.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        l.transpose(),
        BlockStructure::TriangularUpper,
        half_product.as_ref(),
        BlockStructure::TriangularLower,
        1.0,
        par,
    );
    // P + Pᵀ into the lower triangle.
    add_transpose(gram.as_mut(), 1.0, false, f64::INFINITY).expect("no tolerance to fail");
    gram
}

/// The lower triangle of the Gram matrix of `G = F2ᵀ F1` over the non-zero columns of each
/// factor (`G` is `r2 × r1`), taken on the smaller side (`Gᵀ G` or `G Gᵀ`, same non-zero
/// eigenvalues) so that singular covariances add no round-off eigenvalues, whose square roots
/// would cost half the digits. `None` when either covariance is zero.
fn smaller_gram(f1: &Factor, f2: &Factor) -> Option<Pooled> {
    let (a, b) = (f1.nonzero(), f2.nonzero());
    let (r1, r2) = (a.ncols(), b.ncols());
    if r1 == 0 || r2 == 0 {
        return None;
    }
    let par = parallelism(a.nrows());
    let mut g = Pooled::zeros(r2, r1);
    matmul(
        g.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        b.transpose(),
        f2.structure.transposed(),
        a,
        f1.structure,
        1.0,
        par,
    );
    let (left, right) = if r1 <= r2 {
        (g.transpose(), g.as_ref())
    } else {
        (g.as_ref(), g.transpose())
    };
    let r = r1.min(r2);
    let mut gram = Pooled::zeros(r, r);
    matmul(
        gram.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        left,
        BlockStructure::Rectangular,
        right,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    Some(gram)
}

/// A matrix of the W2 route (a covariance, a factor, a Gram matrix) whose memory is taken from,
/// and given back to, a process-wide list of freed matrices, so that repeated distances at one
/// dimension reuse memory the process already has. With the allocator's defaults a matrix of
/// 128 KiB or more (d ≥ 128) is mapped fresh and unmapped when freed, and every W2 would fault
/// its pages in again. Only such matrices are kept (smaller ones come back from the allocator's
/// own free lists), at most [`Pooled::KEPT_COUNT`] of them and [`Pooled::KEPT_BYTES`] in all,
/// the oldest dropped first: the list stays short however many small Gaussians a process makes.
struct Pooled(Mat<f64>);

static FREED: std::sync::Mutex<Vec<Mat<f64>>> = std::sync::Mutex::new(Vec::new());

fn bytes(m: &Mat<f64>) -> usize {
    m.nrows() * m.ncols() * size_of::<f64>()
}

impl Pooled {
    /// Most bytes of freed matrices kept for reuse (a matrix larger than this is freed: there
    /// the O(d³) work dwarfs the mapping).
    const KEPT_BYTES: usize = 64 << 20;
    /// The smallest matrix kept: the allocator maps fresh memory from this size on.
    const MIN_KEPT_BYTES: usize = 128 << 10;
    /// Most freed matrices kept (the W2 route holds a handful at a time).
    const KEPT_COUNT: usize = 32;

    /// An `nrows × ncols` zero matrix, in the memory of a freed one of that shape if one is kept.
    fn zeros(nrows: usize, ncols: usize) -> Self {
        let reused = FREED.lock().ok().and_then(|mut freed| {
            let same = freed
                .iter()
                .rposition(|m| m.nrows() == nrows && m.ncols() == ncols)?;
            Some(freed.remove(same))
        });
        match reused {
            Some(mut m) => {
                m.fill(0.0);
                Pooled(m)
            }
            None => Pooled(Mat::zeros(nrows, ncols)),
        }
    }

    /// A copy of `m`.
    fn copy_of(m: MatRef<'_, f64>) -> Self {
        let mut copy = Pooled::zeros(m.nrows(), m.ncols());
        copy.copy_from(m);
        copy
    }
}

impl Clone for Pooled {
    fn clone(&self) -> Self {
        Pooled::copy_of(self.0.as_ref())
    }
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::ops::Deref for Pooled {
    type Target = Mat<f64>;
    fn deref(&self) -> &Mat<f64> {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Mat<f64> {
        &mut self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let m = std::mem::replace(&mut self.0, Mat::new());
        if !(Self::MIN_KEPT_BYTES..=Self::KEPT_BYTES).contains(&bytes(&m)) {
            return;
        }
        if let Ok(mut freed) = FREED.lock() {
            let mut kept: usize = freed.iter().map(bytes).sum::<usize>() + bytes(&m);
            while kept > Self::KEPT_BYTES || freed.len() >= Self::KEPT_COUNT {
                kept -= bytes(&freed.remove(0));
            }
            freed.push(m);
        }
    }
}

/// A labeled distribution with Gaussian class conditionals: class `y` has probability `probs[y]`
/// and conditional `N(means[y], covs[y])`.
#[derive(Clone, Debug)]
pub struct ClassConditionalGaussians {
    classes: Vec<Gaussian>,
    probs: Vec<f64>,
}

impl ClassConditionalGaussians {
    /// Validates: at least one class, one dimension across classes, probabilities finite,
    /// non-negative and summing to 1 within [`PROBABILITY_TOLERANCE`].
    pub fn new(classes: Vec<Gaussian>, probs: Vec<f64>) -> Result<Self> {
        let k = classes.len();
        if k == 0 {
            return Err(Error::invalid("classes", "at least one class"));
        }
        if probs.len() != k {
            return Err(Error::invalid(
                "probs",
                format!("{k} class probabilities, got {}", probs.len()),
            ));
        }
        let d = classes[0].dim();
        if let Some(y) = classes.iter().position(|g| g.dim() != d) {
            return Err(Error::invalid(
                "classes",
                format!(
                    "every class in dimension {d}, class {y} has dimension {}",
                    classes[y].dim()
                ),
            ));
        }
        if let Some(y) = probs.iter().position(|p| !p.is_finite() || *p < 0.0) {
            return Err(Error::invalid(
                "probs",
                format!("finite non-negative values, probs[{y}] = {}", probs[y]),
            ));
        }
        let total: f64 = probs.iter().sum();
        if (total - 1.0).abs() > PROBABILITY_TOLERANCE {
            return Err(Error::invalid(
                "probs",
                format!("probabilities summing to 1, they sum to {total}"),
            ));
        }
        Ok(ClassConditionalGaussians { classes, probs })
    }

    /// Equal class probabilities `1/K`.
    pub fn uniform(classes: Vec<Gaussian>) -> Result<Self> {
        let k = classes.len().max(1);
        ClassConditionalGaussians::new(classes, vec![1.0 / k as f64; k])
    }

    /// Number of classes `K`.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Input dimension `d`.
    pub fn dim(&self) -> usize {
        self.classes[0].dim()
    }

    /// Class conditional `D | y`.
    pub fn class(&self, y: usize) -> &Gaussian {
        &self.classes[y]
    }

    /// All class conditionals, in label order.
    pub fn classes(&self) -> &[Gaussian] {
        &self.classes
    }

    /// Class probabilities `Pr[y]`.
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }
}

/// Conditional Wasserstein distance with its per-class terms.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ConditionalWasserstein {
    /// `cwd(D, D~) = Σ_y Pr[y] · W2(D|y, D~|y)`.
    pub cwd: f64,
    /// `W2(D|y, D~|y)` for each label `y`.
    pub per_class: Vec<f64>,
}

/// Conditional Wasserstein distance of Definition 2 with the Euclidean W2 ground cost:
/// `cwd(D, D~) = Σ_y Pr[y] · W2(D|y, D~|y)`.
///
/// Theorem 1 needs identical label distributions; two sets whose class counts or probabilities
/// differ (beyond [`PROBABILITY_TOLERANCE`]) are refused. Since `W1 ≤ W2`, this upper-bounds the
/// `cwd` of Theorem 1 for the ℓ2 metric and, because `‖·‖∞ ≤ ‖·‖2`, for ℓ∞ too. The per-class
/// distances are independent and run in parallel (rayon's pool).
pub fn conditional_wasserstein(
    real: &ClassConditionalGaussians,
    proxy: &ClassConditionalGaussians,
) -> Result<ConditionalWasserstein> {
    use rayon::prelude::*;
    check_same_labels(real, proxy)?;
    let per_class = real
        .classes
        .par_iter()
        .zip(&proxy.classes)
        .map(|(a, b)| wasserstein2(a, b))
        .collect::<Result<Vec<f64>>>()?;
    let cwd = per_class.iter().zip(&real.probs).map(|(w, p)| w * p).sum();
    Ok(ConditionalWasserstein { cwd, per_class })
}

/// `Σ_y Pr[y] · ‖m_y − m~_y‖`, the lower bound of the conditional W2 (and W1) distance given by
/// the means alone (Jensen: `E‖x − x'‖ ≥ ‖E x − E x'‖`).
pub fn conditional_mean_distance(
    real: &ClassConditionalGaussians,
    proxy: &ClassConditionalGaussians,
) -> Result<f64> {
    check_same_labels(real, proxy)?;
    Ok(real
        .classes
        .iter()
        .zip(&proxy.classes)
        .zip(&real.probs)
        .map(|((a, b), p)| p * euclidean_distance(&a.mean, &b.mean))
        .sum())
}

fn euclidean_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn check_same_labels(a: &ClassConditionalGaussians, b: &ClassConditionalGaussians) -> Result<()> {
    if a.num_classes() != b.num_classes() {
        return Err(Error::invalid(
            "label distributions",
            format!(
                "the same classes in both distributions (Theorem 1), got {} and {} classes",
                a.num_classes(),
                b.num_classes()
            ),
        ));
    }
    if a.dim() != b.dim() {
        return Err(Error::invalid(
            "dimensions",
            format!(
                "both distributions in the same dimension, got {} and {}",
                a.dim(),
                b.dim()
            ),
        ));
    }
    for (y, (p, q)) in a.probs.iter().zip(&b.probs).enumerate() {
        if (p - q).abs() > PROBABILITY_TOLERANCE {
            return Err(Error::invalid(
                "label distributions",
                format!(
                    "identical class probabilities (Theorem 1's hypothesis), class {y} has {p} and {q}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    /// The freed-matrix list keeps neither small matrices nor more than its count, however many
    /// Gaussians are dropped, and a kept matrix is handed out again at its shape.
    #[test]
    fn the_pool_stays_short_and_keeps_only_large_matrices() {
        for _ in 0..10_000 {
            drop(Gaussian::new(vec![0.0; 2], Mat::identity(2, 2)).unwrap());
        }
        for _ in 0..(2 * Pooled::KEPT_COUNT) {
            drop(Pooled(Mat::zeros(128, 128)));
        }
        {
            let freed = FREED.lock().unwrap();
            assert!(freed.len() <= Pooled::KEPT_COUNT, "{} kept", freed.len());
            assert!(freed.iter().all(|m| bytes(m) >= Pooled::MIN_KEPT_BYTES));
            assert!(freed.iter().map(bytes).sum::<usize>() <= Pooled::KEPT_BYTES);
        }
        let reused = Pooled::zeros(128, 128);
        assert!(
            reused
                .0
                .as_ref()
                .col_iter()
                .all(|c| c.iter().all(|v| *v == 0.0))
        );
    }
}
