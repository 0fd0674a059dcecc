//! Development aid: the one-stage (fused unblocked) and two-stage reductions of `theory::eigen`
//! (two-stage by bandwidth, split into its stages; stage 1 by panels per trailing update)
//! against faer's eigenvalues, and where faer's
//! spend their time (tridiagonalisation, tridiagonal QR), at dimension D:
//! `cargo run --release --example tridiag_probe -- 3072`.
use std::time::Instant;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::{Mat, Par, Side};
use rand::SeedableRng;

fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    proxyrobust::memory::retain_freed_memory();
    let d: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(3072);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let a = proxyrobust::theory::gaussian::standard_normal_matrix(d, d, &mut rng);
    let s = Mat::from_fn(d, d, |i, j| a[(i, j)] + a[(j, i)]);
    let par = Par::rayon(2);
    faer::set_global_parallelism(par);
    for _ in 0..2 {
        let total = seconds(|| drop(s.self_adjoint_eigenvalues(Side::Lower).unwrap()));
        use proxyrobust::theory::eigen::{tridiagonal_eigenvalues, unblocked};
        let one_stage = (0..4)
            .map(|_| {
                seconds(|| {
                    let (diag, offdiag) = unblocked::tridiagonalise(s.as_ref());
                    drop(tridiagonal_eigenvalues(diag, offdiag).unwrap())
                })
            })
            .fold(f64::INFINITY, f64::min);
        println!("d={d}: one-stage (fused unblocked) eigenvalues {one_stage:.4} s (fastest of 4)");
        for b in [16, 32, 48, 64] {
            use proxyrobust::theory::eigen::band;
            let mut c = s.clone();
            let one = seconds(|| band::reduce_to_band(c.as_mut(), b, par));
            let mut tri = (Vec::new(), Vec::new());
            let two = seconds(|| {
                tri = band::tridiagonalise_band(band::Band::from_lower(c.as_ref(), b), 2)
            });
            let one_thread = seconds(|| {
                drop(band::tridiagonalise_band(
                    band::Band::from_lower(c.as_ref(), b),
                    1,
                ))
            });
            let ql = seconds(|| {
                drop(proxyrobust::theory::eigen::tridiagonal_eigenvalues(tri.0, tri.1).unwrap())
            });
            println!("d={d}: bulge chasing b={b} on one thread {one_thread:.4} s");
            println!(
                "d={d}: two-stage b={b}: band {one:.4} s + bulge chasing {two:.4} s + QL {ql:.4} s = {:.4} s",
                one + two + ql
            );
        }
        for group in 1..=4 {
            let mut c = s.clone();
            let band = seconds(|| {
                proxyrobust::theory::eigen::band::reduce_to_band_in_groups(
                    c.as_mut(),
                    32,
                    group,
                    par,
                )
            });
            println!("d={d}: band of 32 with {group} panels per trailing update {band:.4} s");
        }
        let mut t = s.clone();
        let mut h = Mat::<f64>::zeros(1, d - 1);
        let req =
            faer::linalg::evd::tridiag::tridiag_in_place_scratch::<f64>(d, par, Default::default());
        let mut buf = MemBuffer::new(req);
        let tri = seconds(|| {
            faer::linalg::evd::tridiag::tridiag_in_place(
                t.as_mut(),
                h.as_mut(),
                par,
                MemStack::new(&mut buf),
                Default::default(),
            )
        });
        let diag = faer::Col::from_fn(d, |i| t[(i, i)]);
        let sub = faer::Col::from_fn(d, |i| if i + 1 < d { t[(i + 1, i)] } else { 0.0 });
        let mut ev = faer::diag::Diag::<f64>::zeros(d);
        let req = faer::linalg::evd::self_adjoint_evd_scratch::<f64>(
            d,
            faer::linalg::evd::ComputeEigenvectors::No,
            par,
            Default::default(),
        );
        let mut buf = MemBuffer::new(req);
        let qr = seconds(|| {
            faer::linalg::evd::tridiagonal_self_adjoint_evd(
                diag.as_diagonal(),
                sub.as_diagonal(),
                ev.as_mut(),
                None,
                par,
                MemStack::new(&mut buf),
                Default::default(),
            )
            .unwrap()
        });
        let (dv, ev_sub): (Vec<f64>, Vec<f64>) = (
            diag.iter().copied().collect(),
            (0..d - 1).map(|i| sub[i]).collect(),
        );
        let reps = (1 << 24) / (d * d) + 1;
        let ql = seconds(|| {
            for _ in 0..reps {
                drop(
                    proxyrobust::theory::eigen::tridiagonal_eigenvalues(dv.clone(), ev_sub.clone())
                        .unwrap(),
                )
            }
        }) / reps as f64;
        // The quadrature needs a positive definite matrix: shift past the Gershgorin bound.
        let bound = (0..d)
            .map(|i| dv[i].abs() + 2.0 * ev_sub.get(i).map_or(0.0, |e| e.abs()))
            .fold(0.0, f64::max);
        let shifted: Vec<f64> = dv.iter().map(|x| x + 1.01 * bound).collect();
        let quadrature = seconds(|| {
            for _ in 0..reps {
                std::hint::black_box(
                    proxyrobust::theory::eigen::trace_sqrt::trace_sqrt(&shifted, &ev_sub).unwrap(),
                );
            }
        }) / reps as f64;
        let batch = reps / 8 + 1;
        let fused = (0..8)
            .map(|_| {
                seconds(|| {
                    for _ in 0..batch {
                        drop(proxyrobust::theory::eigen::unblocked::tridiagonalise(
                            s.as_ref(),
                        ))
                    }
                }) / batch as f64
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "d={d}: fused unblocked tridiagonalisation {:.1} us (fastest of 8 batches)",
            fused * 1e6
        );
        println!(
            "d={d}: faer eigenvalues {total:.4} s = tridiag {tri:.4} s + tridiagonal QR {qr:.4} s (+ copy); root-free QL {:.1} us; Σ √λ by quadrature {:.1} us",
            ql * 1e6,
            quadrature * 1e6
        );
    }
}
