//! Per-step timings of the W2 route (development aid): `cargo run --release --example w2_profile -- D`.
use std::time::Instant;

use faer::{Mat, Side};
use rand::SeedableRng;

fn median(mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[3]
}

fn main() {
    let d: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(128);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let a = proxyrobust::theory::gaussian::standard_normal_matrix(d, d, &mut rng);
    let mut s = faer::Scale(1.0 / d as f64) * (&a * a.transpose());
    for i in 0..d {
        s[(i, i)] += 0.1;
    }
    let s = Mat::from_fn(d, d, |i, j| 0.5 * (s[(i, j)] + s[(j, i)]));
    for par in [faer::Par::Seq, faer::Par::rayon(2)] {
        faer::set_global_parallelism(par);
        let llt = median(|| drop(s.llt(Side::Lower).unwrap()));
        let eig = median(|| drop(s.self_adjoint_eigenvalues(Side::Lower).unwrap()));
        let new = median(|| {
            drop(proxyrobust::theory::gaussian::Gaussian::new(vec![0.0; d], s.clone()).unwrap())
        });
        let g = proxyrobust::theory::gaussian::Gaussian::new(vec![0.0; d], s.clone()).unwrap();
        let w2 = median(|| {
            proxyrobust::theory::gaussian::wasserstein2(&g, &g).unwrap();
        });
        let l = s.llt(Side::Lower).unwrap().L().to_owned();
        use faer::linalg::matmul::triangular::{BlockStructure as B, matmul};
        let mut g = Mat::<f64>::zeros(d, d);
        let tri = median(|| {
            matmul(
                g.as_mut(),
                B::Rectangular,
                faer::Accum::Replace,
                l.transpose(),
                B::TriangularUpper,
                l.as_ref(),
                B::TriangularLower,
                1.0,
                par,
            )
        });
        let dense = median(|| {
            matmul(
                g.as_mut(),
                B::Rectangular,
                faer::Accum::Replace,
                l.transpose(),
                B::Rectangular,
                l.as_ref(),
                B::Rectangular,
                1.0,
                par,
            )
        });
        let mut gram = Mat::<f64>::zeros(d, d);
        let syrk = median(|| {
            matmul(
                gram.as_mut(),
                B::TriangularLower,
                faer::Accum::Replace,
                g.transpose(),
                B::Rectangular,
                g.as_ref(),
                B::Rectangular,
                1.0,
                par,
            )
        });
        let gemm = median(|| {
            matmul(
                gram.as_mut(),
                B::Rectangular,
                faer::Accum::Replace,
                g.transpose(),
                B::Rectangular,
                g.as_ref(),
                B::Rectangular,
                1.0,
                par,
            )
        });
        let copy = median(|| drop(s.clone()));
        println!("clone {copy:.2e}");
        println!("tri {tri:.2e} dense {dense:.2e} syrk {syrk:.2e} gemm {gemm:.2e}");
        println!("{par:?}: llt {llt:.2e} eig {eig:.2e} new {new:.2e} w2 {w2:.2e}");
    }
}
