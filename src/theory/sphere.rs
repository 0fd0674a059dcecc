//! Concentric uniform spheres, where Theorem 2 holds with equality (Lemma 5).
//!
//! For `D|y` uniform on the ℓp sphere of radius `r` and `D~|y` uniform on the concentric sphere of
//! radius `r~` (p = 2 or ∞), the radial map `x ↦ c + (x − c)·r~/r` pushes one onto the other at
//! cost exactly `|r − r~|` per point, and no coupling does better because
//! `‖x − x'‖ ≥ |‖x − c‖ − ‖x' − c‖|`. Hence `W1 = |r − r~|`, and by Lemma 5 the best robust
//! discriminator is perfect for `ε < |r − r~|/2` and useless beyond, so `ARC = |r − r~|/4`.

use faer::Mat;
use rand::Rng;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::discrimination::{ArcCurve, radial_arc};
use super::norm::Norm;
use crate::error::{Error, Result};

/// The `arc-sphere` command: two concentric spheres and the empirical ARC's settings.
#[derive(Clone, Debug, clap::Args)]
pub struct SphereCheck {
    #[arg(long, allow_negative_numbers = true)]
    pub r: f64,
    #[arg(long = "r-tilde", allow_negative_numbers = true)]
    pub r_tilde: f64,
    #[arg(long)]
    pub dim: usize,
    #[arg(long, value_enum, default_value = "l2")]
    pub norm: Norm,
    /// Steps of the ε grid.
    #[arg(long, default_value_t = 1000)]
    pub grid: usize,
    /// Training and held-out samples per sphere.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write 2·samples fresh points of each sphere as `DIR/real.npz` and `DIR/proxy.npz`
    /// (npz `x`, float64 (n, d)): the vector sets of the network route, `arc`.
    #[arg(long)]
    pub write_sets: Option<std::path::PathBuf>,
}

impl SphereCheck {
    /// [`ConcentricSpheres::arc_check`] of these spheres, seeded by `seed`, and the sets of
    /// `write_sets`.
    pub fn run(&self) -> Result<SphereArc> {
        use rand::SeedableRng;
        let spheres = ConcentricSpheres::new(self.dim, self.r, self.r_tilde, self.norm)?;
        check_sizes(
            ["--dim", "--grid", "--samples"],
            self.dim,
            self.grid,
            self.samples,
        )?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let check = spheres.arc_check(self.samples, self.grid, &mut rng)?;
        if let Some(dir) = &self.write_sets {
            for (name, radius) in [("real.npz", self.r), ("proxy.npz", self.r_tilde)] {
                let points = spheres.sample(2 * self.samples, radius, &mut rng);
                crate::npz::write_vectors(&dir.join(name), &points)?;
            }
        }
        Ok(check)
    }
}

/// Range checks of an empirical sphere ARC, each error naming its field of `fields` (dimension,
/// grid, samples): a grid of 1 to 10^7 steps, at most 10^5 dimensions and 10^7 samples, and
/// samples × dim values that fit in memory.
pub fn check_sizes(fields: [&str; 3], dim: usize, grid: usize, samples: usize) -> Result<()> {
    use crate::config::{at_least, at_most, fits_in_memory};
    let [dim_field, grid_field, samples_field] = fields;
    at_least(grid_field, grid, 1)?;
    at_most(dim_field, dim, 100_000)?;
    at_most(grid_field, grid, 10_000_000)?;
    at_most(samples_field, samples, 10_000_000)?;
    fits_in_memory(samples_field, "samples × dim", &[samples, dim])
}

/// cwd and ARC of two concentric spheres: closed forms and the empirical ARC.
#[derive(Clone, Debug, Serialize)]
pub struct SphereArc {
    pub cwd: f64,
    pub arc_closed_form: f64,
    pub arc_empirical: f64,
}

impl std::fmt::Display for SphereArc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cwd {:.6e}  ARC closed form {:.6e}  ARC empirical {:.6e}  ",
            self.cwd, self.arc_closed_form, self.arc_empirical
        )?;
        if self.cwd > 0.0 {
            write!(
                f,
                "(4·ARC/cwd = {:.4})",
                4.0 * self.arc_empirical / self.cwd
            )
        } else {
            write!(f, "(cwd = 0: identical spheres, 4·ARC/cwd undefined)")
        }
    }
}

/// One pair of concentric spheres centred at the origin.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ConcentricSpheres {
    pub dim: usize,
    /// Radius of the real class conditional.
    pub r: f64,
    /// Radius of the proxy class conditional.
    pub r_tilde: f64,
    /// ℓ2 or ℓ∞.
    pub norm: Norm,
}

impl ConcentricSpheres {
    /// Validates dimension ≥ 1, finite radii > 0 and an ℓ2 or ℓ∞ norm.
    pub fn new(dim: usize, r: f64, r_tilde: f64, norm: Norm) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid("dim", "at least 1"));
        }
        for (name, v) in [("r", r), ("r_tilde", r_tilde)] {
            // Squared norms of the samples must stay finite and normal in f64.
            if !(1e-100..=1e100).contains(&v) {
                return Err(Error::invalid(
                    name,
                    format!("a radius > 0, between 1e-100 and 1e100, got {v}"),
                ));
            }
        }
        if norm == Norm::L1 {
            return Err(Error::invalid(
                "norm",
                "l2 or linf (the spheres of Theorem 2's experiments)",
            ));
        }
        Ok(ConcentricSpheres {
            dim,
            r,
            r_tilde,
            norm,
        })
    }

    /// Closed-form `cwd = W1 = |r − r~|`.
    pub fn conditional_wasserstein(&self) -> f64 {
        (self.r - self.r_tilde).abs()
    }

    /// Closed-form `ARC = |r − r~| / 4` (Theorem 2, second part).
    pub fn arc(&self) -> f64 {
        self.conditional_wasserstein() / 4.0
    }

    /// Theorem 2's check for these spheres: closed-form cwd and ARC beside the empirical ARC of
    /// [`Self::empirical_arc`] (the `arc-sphere` command).
    pub fn arc_check<R: Rng + ?Sized>(
        &self,
        samples: usize,
        grid: usize,
        rng: &mut R,
    ) -> Result<SphereArc> {
        Ok(SphereArc {
            cwd: self.conditional_wasserstein(),
            arc_closed_form: self.arc(),
            arc_empirical: self.empirical_arc(samples, grid, rng)?.arc,
        })
    }

    /// The empirical route of the paper: `samples` training and `samples` held-out points from
    /// each sphere, the best radial-threshold discriminator fitted per ε on the training half,
    /// its robust accuracy on the held-out half, and ARC by the trapezoid rule over `grid` steps.
    pub fn empirical_arc<R: Rng + ?Sized>(
        &self,
        samples: usize,
        grid: usize,
        rng: &mut R,
    ) -> Result<ArcCurve> {
        if samples == 0 {
            return Err(Error::invalid(
                "samples",
                "at least one sample per sphere and split",
            ));
        }
        let mut norms = |radius: f64| -> Vec<f64> {
            let x = self.sample(samples, radius, rng);
            (0..samples)
                .map(|i| self.norm.of(&x.row(i).iter().copied().collect::<Vec<_>>()))
                .collect()
        };
        let (real_train, proxy_train) = (norms(self.r), norms(self.r_tilde));
        let (real_test, proxy_test) = (norms(self.r), norms(self.r_tilde));
        radial_arc((&real_train, &proxy_train), (&real_test, &proxy_test), grid)
    }

    /// `n` points uniform on the sphere of the given radius, as rows.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, radius: f64, rng: &mut R) -> Mat<f64> {
        let d = self.dim;
        let mut x = Mat::<f64>::zeros(n, d);
        for i in 0..n {
            match self.norm {
                // A standard normal direction, normalised: uniform on the ℓ2 sphere.
                Norm::L2 => {
                    let v: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
                    let length = Norm::L2.of(&v);
                    for j in 0..d {
                        x[(i, j)] = radius * v[j] / length;
                    }
                }
                // The ℓ∞ sphere is the cube's surface: 2d faces of equal area; pick one, then a
                // uniform point on it.
                Norm::Linf | Norm::L1 => {
                    let face = rng.random_range(0..2 * d);
                    for j in 0..d {
                        x[(i, j)] = radius * (2.0 * rng.random::<f64>() - 1.0);
                    }
                    x[(i, face / 2)] = if face % 2 == 0 { radius } else { -radius };
                }
            }
        }
        x
    }
}
