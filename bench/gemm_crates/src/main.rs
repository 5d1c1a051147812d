//! GFLOP/s of matrixmultiply (rows split over two rayon threads, as the engine calls it) and of
//! the `gemm` crate (its own two-thread parallelism) on the engine's GEMM shapes: the nn suite's
//! Linear layers, the 2-128-128-1 MLP's hidden layer at 16384 chains and the 784x500 RBM's
//! hidden step at batch 100. Best of three timings of about 0.4 GFLOP each.

use rayon::prelude::*;
use std::time::Instant;

const THREADS: usize = 2;

fn main() {
    rayon::ThreadPoolBuilder::new().num_threads(THREADS).build_global().unwrap();
    for &(m, k, n) in
        &[(1024usize, 256usize, 64usize), (8192, 256, 64), (1024, 1024, 1024), (16384, 128, 128), (100, 784, 500)]
    {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = ((4e8 / (m * k * n) as f64) as usize).max(1);
        let time = |f: &mut dyn FnMut()| {
            f();
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            flops / best / 1e9
        };
        let matrixmultiply = time(&mut || {
            let chunk = m.div_ceil(THREADS);
            c.par_chunks_mut(chunk * n).zip(a.par_chunks(chunk * k)).for_each(|(c, a)| {
                let rows = a.len() / k;
                // SAFETY: a is [rows, k], b [k, n], c [rows, n], all row-major.
                unsafe {
                    matrixmultiply::sgemm(
                        rows,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            });
        });
        let gemm = time(&mut || {
            // SAFETY: as above (gemm takes column stride, then row stride).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(THREADS),
                );
            }
        });
        println!("{m}x{k} -> {n}: matrixmultiply {matrixmultiply:.1} GFLOP/s, gemm {gemm:.1} GFLOP/s");
    }
}
