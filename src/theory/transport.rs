//! Exact optimal transport between empirical measures.
//!
//! `W_p(μ, ν) = (min_{π ∈ Π(a, b)} Σ_ij π_ij ‖x_i − y_j‖^p)^{1/p}` for `μ = Σ a_i δ_{x_i}` and
//! `ν = Σ b_j δ_{y_j}`, with an ℓ1, ℓ2 or ℓ∞ ground metric and p ∈ {1, 2}. This is the
//! Wasserstein distance inside Definition 2 (cwd) when the class conditionals are empirical.
//!
//! - Uniform weights on clouds of equal size: an optimal plan is a permutation (Birkhoff), found
//!   by the Jonker–Volgenant assignment algorithm of the `lapjv` crate.
//! - General weights (mixtures, Theorem 6): the transportation problem, solved by the primal
//!   network simplex on the complete bipartite graph, with an artificial root and the
//!   strongly-feasible leaving-arc rule (Cunningham, 1976) so degenerate pivots cannot cycle.

use faer::{Mat, MatRef};

use super::norm::Norm;
use crate::error::{Error, Result};

/// Absolute tolerance on the total mass of a weight vector.
pub const WEIGHT_TOLERANCE: f64 = 1e-9;

/// A discrete probability measure `Σ_i w_i δ_{x_i}`: points are the rows of an n × d matrix.
#[derive(Clone, Debug)]
pub struct EmpiricalMeasure {
    points: Mat<f64>,
    weights: Vec<f64>,
    uniform: bool,
}

impl EmpiricalMeasure {
    /// Validates finite points, one non-negative finite weight per point, summing to 1.
    pub fn new(points: Mat<f64>, weights: Vec<f64>) -> Result<Self> {
        let n = points.nrows();
        if n == 0 || points.ncols() == 0 {
            return Err(Error::invalid(
                "points",
                format!(
                    "at least one point of dimension ≥ 1, got shape ({n}, {})",
                    points.ncols()
                ),
            ));
        }
        if weights.len() != n {
            return Err(Error::invalid(
                "weights",
                format!("{n} weights, one per point, got {}", weights.len()),
            ));
        }
        for j in 0..points.ncols() {
            if let Some(i) = points.col(j).iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    "points",
                    format!("finite coordinates, point {i} has {}", points[(i, j)]),
                ));
            }
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(Error::invalid(
                "weights",
                format!("finite non-negative weights, weight {i} is {}", weights[i]),
            ));
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > WEIGHT_TOLERANCE {
            return Err(Error::invalid(
                "weights",
                format!("weights summing to 1, they sum to {total}"),
            ));
        }
        let uniform = weights.iter().all(|w| *w == weights[0]);
        Ok(EmpiricalMeasure {
            points,
            weights,
            uniform,
        })
    }

    /// Equal weights `1/n`.
    pub fn uniform(points: Mat<f64>) -> Result<Self> {
        let n = points.nrows().max(1);
        EmpiricalMeasure::new(points, vec![1.0 / n as f64; n])
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.nrows()
    }

    /// Whether the measure has no points (never true for a constructed measure).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension of the points.
    pub fn dim(&self) -> usize {
        self.points.ncols()
    }

    /// Points as rows.
    pub fn points(&self) -> MatRef<'_, f64> {
        self.points.as_ref()
    }

    /// Weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The mixture `p·self + (1 − p)·other` as one measure on the union of the supports.
    pub fn mixture(&self, other: &EmpiricalMeasure, p: f64) -> Result<EmpiricalMeasure> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "mixture weight",
                format!("p in [0, 1], got {p}"),
            ));
        }
        if self.dim() != other.dim() {
            return Err(Error::invalid(
                "dimensions",
                format!(
                    "both measures in the same dimension, got {} and {}",
                    self.dim(),
                    other.dim()
                ),
            ));
        }
        let (n, m) = (self.len(), other.len());
        let points = Mat::from_fn(n + m, self.dim(), |i, j| {
            if i < n {
                self.points[(i, j)]
            } else {
                other.points[(i - n, j)]
            }
        });
        let weights = self
            .weights
            .iter()
            .map(|w| p * w)
            .chain(other.weights.iter().map(|w| (1.0 - p) * w))
            .collect();
        EmpiricalMeasure::new(points, weights)
    }
}

/// The positive entries `(i, j, π_ij)` of a transport plan.
pub type Coupling = Vec<(usize, usize, f64)>;

/// An optimal coupling: `cost = Σ flow · ‖x_i − y_j‖^p` and the non-zero entries of the plan.
#[derive(Clone, Debug)]
pub struct Transport {
    /// `W_p` itself, `cost^{1/p}`.
    pub distance: f64,
    /// The optimal value `Σ_ij π_ij c_ij` (`W_p^p`).
    pub cost: f64,
    /// `(i, j, π_ij)` for every positive entry of the plan.
    pub plan: Coupling,
}

/// The ground cost matrix `C_ij = ‖x_i − y_j‖^p` (n × m).
pub fn cost_matrix(x: MatRef<'_, f64>, y: MatRef<'_, f64>, metric: Norm, p: u32) -> Mat<f64> {
    let d = x.ncols();
    let mut diff = vec![0.0; d];
    Mat::from_fn(x.nrows(), y.nrows(), |i, j| {
        for (c, v) in diff.iter_mut().enumerate() {
            *v = x[(i, c)] - y[(j, c)];
        }
        metric.of(&diff).powi(p as i32)
    })
}

/// Exact `W_p(μ, ν)` with the given ground metric (p = 1 or 2), and an optimal plan.
pub fn wasserstein(
    mu: &EmpiricalMeasure,
    nu: &EmpiricalMeasure,
    p: u32,
    metric: Norm,
) -> Result<Transport> {
    if p != 1 && p != 2 {
        return Err(Error::invalid("p", format!("1 or 2, got {p}")));
    }
    if mu.dim() != nu.dim() {
        return Err(Error::invalid(
            "dimensions",
            format!(
                "both point clouds in the same dimension, got {} and {}",
                mu.dim(),
                nu.dim()
            ),
        ));
    }
    let costs = cost_matrix(mu.points(), nu.points(), metric, p);
    let (cost, plan) = if mu.uniform && nu.uniform && mu.len() == nu.len() {
        assignment(&costs)?
    } else {
        network_simplex(&costs, mu.weights(), nu.weights())?
    };
    let cost = cost.max(0.0);
    Ok(Transport {
        distance: cost.powf(1.0 / p as f64),
        cost,
        plan,
    })
}

/// Uniform n-to-n transport as an assignment problem (Jonker–Volgenant, `lapjv` crate):
/// returns the optimal cost `Σ_i C_{i,σ(i)}/n` and the plan. `costs` must be square.
pub fn assignment(costs: &Mat<f64>) -> Result<(f64, Coupling)> {
    let n = costs.nrows();
    if costs.ncols() != n || n == 0 {
        return Err(Error::invalid(
            "assignment",
            format!(
                "a non-empty square cost matrix, got {n} × {}",
                costs.ncols()
            ),
        ));
    }
    let matrix = ndarray_lapjv::Array2::from_shape_fn((n, n), |(i, j)| costs[(i, j)]);
    let (row_to_col, _) = lapjv::lapjv(&matrix)
        .map_err(|e| Error::invalid("assignment", format!("a solvable cost matrix: {e:?}")))?;
    let weight = 1.0 / n as f64;
    let plan: Coupling = row_to_col
        .iter()
        .enumerate()
        .map(|(i, &j)| (i, j, weight))
        .collect();
    let cost = plan.iter().map(|&(i, j, w)| w * costs[(i, j)]).sum();
    Ok((cost, plan))
}

/// Orientation of a tree node's arc to its parent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    /// The arc points from the node to its parent.
    Up,
    /// The arc points from the parent to the node.
    Down,
}

/// An arc of the network: a real arc `source i → sink j`, or the artificial arc joining node
/// `u` to the root.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arc {
    Real(usize, usize),
    Artificial,
}

/// The spanning tree of the network simplex: for every node, its parent, the arc to it, that
/// arc's direction and flow, its depth and its children.
struct SpanningTree {
    sources: usize,
    parent: Vec<usize>,
    arc: Vec<Arc>,
    direction: Vec<Direction>,
    flow: Vec<f64>,
    depth: Vec<usize>,
    children: Vec<Vec<usize>>,
    potential: Vec<f64>,
}

/// Network simplex for the transportation problem `min Σ C_ij π_ij` subject to row sums `a` and
/// column sums `b`. Nodes `0..n` are sources, `n..n+m` sinks and `n+m` the artificial root.
/// Initially every source sends its supply to the root at cost 0 and the root feeds every sink
/// at a cost `M` larger than any path of real arcs, so the optimum uses no artificial flow.
pub fn network_simplex(costs: &Mat<f64>, a: &[f64], b: &[f64]) -> Result<(f64, Coupling)> {
    let (n, m) = (a.len(), b.len());
    if costs.nrows() != n || costs.ncols() != m || n == 0 || m == 0 {
        return Err(Error::invalid(
            "transport",
            format!(
                "a {n} × {m} cost matrix for the weights, got {} × {}",
                costs.nrows(),
                costs.ncols()
            ),
        ));
    }
    let root = n + m;
    let max_cost = (0..m)
        .flat_map(|j| costs.col(j).iter().copied())
        .fold(0.0f64, |acc, c| acc.max(c.abs()));
    let artificial_cost = (max_cost + 1.0) * (n + m) as f64;
    let mut tree = SpanningTree {
        sources: n,
        parent: vec![root; n + m + 1],
        arc: vec![Arc::Artificial; n + m + 1],
        direction: (0..=n + m)
            .map(|u| {
                if u < n {
                    Direction::Up
                } else {
                    Direction::Down
                }
            })
            .collect(),
        flow: a.iter().chain(b.iter()).copied().chain([0.0]).collect(),
        depth: (0..=n + m).map(|u| usize::from(u != root)).collect(),
        children: (0..=n + m)
            .map(|u| {
                if u == root {
                    (0..n + m).collect()
                } else {
                    Vec::new()
                }
            })
            .collect(),
        potential: (0..=n + m)
            .map(|u| {
                if u < n || u == root {
                    0.0
                } else {
                    artificial_cost
                }
            })
            .collect(),
    };
    let tolerance = 1e-12 * max_cost.max(f64::MIN_POSITIVE);
    let arcs = n * m;
    let block = ((arcs as f64).sqrt().ceil() as usize).clamp(1, arcs.max(1));
    let mut next = 0usize;
    let max_pivots = 1_000_000usize.max(50 * arcs);
    for _ in 0..max_pivots {
        let Some((i, j)) = entering_arc(costs, &tree.potential, n, &mut next, block, tolerance)
        else {
            let artificial_flow: f64 = (0..n + m)
                .filter(|&u| tree.arc[u] == Arc::Artificial)
                .map(|u| tree.flow[u])
                .sum();
            if artificial_flow > WEIGHT_TOLERANCE {
                return Err(Error::invalid(
                    "transport",
                    "balanced supplies: some mass could not be transported",
                ));
            }
            let plan: Coupling = (0..n + m)
                .filter_map(|u| match tree.arc[u] {
                    Arc::Real(i, j) if tree.flow[u] > 0.0 => Some((i, j, tree.flow[u])),
                    _ => None,
                })
                .collect();
            let cost = plan.iter().map(|&(i, j, f)| f * costs[(i, j)]).sum();
            return Ok((cost, plan));
        };
        tree.pivot(i, n + j, costs[(i, j)]);
    }
    Err(Error::invalid(
        "transport",
        format!("convergence within {max_pivots} network-simplex pivots"),
    ))
}

/// Block search (as in LEMON's network simplex): scan `block` arcs from `next` onwards and take
/// the most negative reduced cost `C_ij + π_i − π_{n+j}`; keep scanning block by block until one
/// is found or every arc has been seen.
fn entering_arc(
    costs: &Mat<f64>,
    potential: &[f64],
    n: usize,
    next: &mut usize,
    block: usize,
    tolerance: f64,
) -> Option<(usize, usize)> {
    let m = costs.ncols();
    let arcs = n * m;
    let mut best: Option<(usize, f64)> = None;
    let mut seen = 0;
    while seen < arcs {
        let end = (seen + block).min(arcs);
        for _ in seen..end {
            let e = *next;
            *next = if e + 1 == arcs { 0 } else { e + 1 };
            let (i, j) = (e / m, e % m);
            let reduced = costs[(i, j)] + potential[i] - potential[n + j];
            if reduced < -tolerance && best.is_none_or(|(_, r)| reduced < r) {
                best = Some((e, reduced));
            }
        }
        seen = end;
        if best.is_some() {
            break;
        }
    }
    best.map(|(e, _)| (e / m, e % m))
}

impl SpanningTree {
    /// Lowest common ancestor of `u` and `v`.
    fn join(&self, mut u: usize, mut v: usize) -> usize {
        while u != v {
            if self.depth[u] >= self.depth[v] {
                u = self.parent[u];
            } else {
                v = self.parent[v];
            }
        }
        u
    }

    /// One pivot with entering arc `first → second` (a source and a sink) of cost `cost`.
    fn pivot(&mut self, first: usize, second: usize, cost: f64) {
        let join = self.join(first, second);
        // Cycle: first → second → … → join → … → first. On the first side the cycle runs down
        // the tree (parent → node), so arcs pointing Up lose flow; on the second side it runs up,
        // so arcs pointing Down lose flow. Ties go to the second side (strongly feasible rule).
        let mut delta = f64::INFINITY;
        let mut leaving = (first, true);
        let mut u = first;
        while u != join {
            if self.direction[u] == Direction::Up && self.flow[u] < delta {
                delta = self.flow[u];
                leaving = (u, true);
            }
            u = self.parent[u];
        }
        let mut u = second;
        while u != join {
            if self.direction[u] == Direction::Down && self.flow[u] <= delta {
                delta = self.flow[u];
                leaving = (u, false);
            }
            u = self.parent[u];
        }
        let delta = if delta.is_finite() { delta } else { 0.0 };
        for (start, losing) in [(first, Direction::Up), (second, Direction::Down)] {
            let mut u = start;
            while u != join {
                if self.direction[u] == losing {
                    self.flow[u] -= delta;
                } else {
                    self.flow[u] += delta;
                }
                u = self.parent[u];
            }
        }
        let (out, on_first_side) = leaving;
        // Re-hang the subtree cut off by the leaving arc: re-root it at the entering arc's
        // endpoint on that side, attached to the other endpoint.
        let (new_root, attach, direction) = if on_first_side {
            (first, second, Direction::Up)
        } else {
            (second, first, Direction::Down)
        };
        let reduced = cost + self.potential[first] - self.potential[second];
        let shift = if on_first_side { -reduced } else { reduced };
        let (i, j) = (first, second - self.sources);
        self.reroot(new_root, out, attach, Arc::Real(i, j), direction, delta);
        self.shift_subtree(new_root, shift);
    }

    /// Reverses the path `new_root → … → out` and hangs `new_root` under `attach` through `arc`.
    fn reroot(
        &mut self,
        new_root: usize,
        out: usize,
        attach: usize,
        arc: Arc,
        direction: Direction,
        flow: f64,
    ) {
        let mut path = vec![new_root];
        while *path.last().unwrap() != out {
            let last = *path.last().unwrap();
            path.push(self.parent[last]);
        }
        let old_parent_of_out = self.parent[out];
        self.remove_child(old_parent_of_out, out);
        // Walk from `out` down to `new_root`, each node becoming the parent of its former parent.
        for k in (1..path.len()).rev() {
            let (node, child) = (path[k], path[k - 1]);
            self.remove_child(node, child);
            self.parent[node] = child;
            self.arc[node] = self.arc[child];
            self.flow[node] = self.flow[child];
            self.direction[node] = match self.direction[child] {
                Direction::Up => Direction::Down,
                Direction::Down => Direction::Up,
            };
            self.children[child].push(node);
        }
        self.parent[new_root] = attach;
        self.arc[new_root] = arc;
        self.flow[new_root] = flow;
        self.direction[new_root] = direction;
        self.children[attach].push(new_root);
    }

    fn remove_child(&mut self, parent: usize, child: usize) {
        let list = &mut self.children[parent];
        if let Some(k) = list.iter().position(|&c| c == child) {
            list.swap_remove(k);
        }
    }

    /// Adds `shift` to the potentials of the subtree under `top` and recomputes its depths.
    fn shift_subtree(&mut self, top: usize, shift: f64) {
        let mut stack = vec![top];
        while let Some(u) = stack.pop() {
            self.potential[u] += shift;
            self.depth[u] = self.depth[self.parent[u]] + 1;
            stack.extend(self.children[u].iter().copied());
        }
    }
}

/// A labeled sample `Ŝ = {(x_i, y_i)}` viewed as the empirical distribution with weight `1/n`
/// per point; its class conditionals `Ŝ|y` are uniform over the points labelled `y`.
#[derive(Clone, Debug)]
pub struct LabeledCloud {
    points: Mat<f64>,
    labels: Vec<usize>,
    num_classes: usize,
}

impl LabeledCloud {
    /// Validates one label below `num_classes` per finite point.
    pub fn new(points: Mat<f64>, labels: Vec<usize>, num_classes: usize) -> Result<Self> {
        if labels.len() != points.nrows() || points.nrows() == 0 {
            return Err(Error::invalid(
                "labels",
                format!(
                    "one label per point and at least one point, got {} labels for {} points",
                    labels.len(),
                    points.nrows()
                ),
            ));
        }
        if let Some(y) = labels.iter().find(|&&y| y >= num_classes) {
            return Err(Error::invalid(
                "labels",
                format!("labels below {num_classes}, got {y}"),
            ));
        }
        EmpiricalMeasure::uniform(points.clone())?;
        Ok(LabeledCloud {
            points,
            labels,
            num_classes,
        })
    }

    /// Points as rows.
    pub fn points(&self) -> MatRef<'_, f64> {
        self.points.as_ref()
    }

    /// Labels, one per point.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Number of classes `K` (some may be empty).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// `Pr[y] = n_y / n`.
    pub fn class_probs(&self) -> Vec<f64> {
        let mut counts = vec![0.0; self.num_classes];
        for &y in &self.labels {
            counts[y] += 1.0;
        }
        counts
            .iter()
            .map(|c| c / self.labels.len() as f64)
            .collect()
    }

    /// `Ŝ|y` as a uniform empirical measure, or `None` for an empty class.
    pub fn class(&self, y: usize) -> Option<EmpiricalMeasure> {
        let rows: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.labels[i] == y)
            .collect();
        if rows.is_empty() {
            return None;
        }
        let points = Mat::from_fn(rows.len(), self.points.ncols(), |r, c| {
            self.points[(rows[r], c)]
        });
        Some(EmpiricalMeasure::uniform(points).expect("points were validated"))
    }

    /// The same labels with new points (e.g. adversarial examples of these points).
    pub fn with_points(&self, points: Mat<f64>) -> Result<Self> {
        LabeledCloud::new(points, self.labels.clone(), self.num_classes)
    }
}

/// Refuses two labeled clouds whose class proportions differ (Theorem 1's hypothesis).
pub fn check_same_class_probs(a: &[f64], b: &[f64]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::invalid(
            "label distributions",
            format!("the same classes, got {} and {}", a.len(), b.len()),
        ));
    }
    for (y, (p, q)) in a.iter().zip(b).enumerate() {
        if (p - q).abs() > WEIGHT_TOLERANCE {
            return Err(Error::invalid(
                "label distributions",
                format!(
                    "identical class proportions (Theorem 1's hypothesis), class {y} has {p} and {q}"
                ),
            ));
        }
    }
    Ok(())
}

/// Conditional Wasserstein distance of Definition 2 between empirical labeled distributions:
/// `cwd_p(Ŝ, Ŝ') = Σ_y Pr[y] · W_p(Ŝ|y, Ŝ'|y)`, each term by exact OT with the given ground
/// metric. The per-class conditionals come from `conditional`, so weighted ones (mixtures) work too.
pub fn conditional_wasserstein_by<F, G>(
    probs: &[f64],
    real: F,
    proxy: G,
    p: u32,
    metric: Norm,
) -> Result<super::gaussian::ConditionalWasserstein>
where
    F: Fn(usize) -> Option<EmpiricalMeasure>,
    G: Fn(usize) -> Option<EmpiricalMeasure>,
{
    let mut per_class = Vec::with_capacity(probs.len());
    for y in 0..probs.len() {
        let w = match (real(y), proxy(y)) {
            (Some(a), Some(b)) => wasserstein(&a, &b, p, metric)?.distance,
            (None, None) => 0.0,
            _ => {
                return Err(Error::invalid(
                    "classes",
                    format!("class {y} present in both distributions or in neither"),
                ));
            }
        };
        per_class.push(w);
    }
    let cwd = per_class.iter().zip(probs).map(|(w, p)| w * p).sum();
    Ok(super::gaussian::ConditionalWasserstein { cwd, per_class })
}

/// `cwd_p(Ŝ, Ŝ')` for two labeled clouds with identical class proportions.
pub fn empirical_conditional_wasserstein(
    a: &LabeledCloud,
    b: &LabeledCloud,
    p: u32,
    metric: Norm,
) -> Result<super::gaussian::ConditionalWasserstein> {
    let probs = a.class_probs();
    check_same_class_probs(&probs, &b.class_probs())?;
    if a.points.ncols() != b.points.ncols() {
        return Err(Error::invalid(
            "dimensions",
            format!(
                "both clouds in the same dimension, got {} and {}",
                a.points.ncols(),
                b.points.ncols()
            ),
        ));
    }
    conditional_wasserstein_by(&probs, |y| a.class(y), |y| b.class(y), p, metric)
}
