//! GFLOP/s of matrixmultiply and of the `gemm` crate on the engine's GEMM shapes, each called
//! as the engine calls its sgemm (rows split over two rayon threads, one single-threaded call
//! per thread), and the `gemm` crate with its own two-thread parallelism: the nn suite's Linear
//! layers, the 2-128-128-1 MLP's hidden layer at 16384 chains (both products of a MALA step),
//! the 784x500 RBM's hidden step at batch 100 and the UvA conv2 im2col product. Best of three
//! timings of about 0.4 GFLOP each.

use rayon::prelude::*;
use std::time::Instant;

const THREADS: usize = 2;

/// C [m, n] = A [m, k] B through the `gemm` crate, B read with strides (rsb, csb).
fn gemm_crate(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    (rsb, csb): (isize, isize),
    c: &mut [f32],
    par: gemm::Parallelism,
) {
    assert!(a.len() >= m * k && c.len() >= m * n && b.len() >= k * n);
    // SAFETY: a is [m, k], b [k, n] through (rsb, csb), c [m, n], all in bounds (checked above).
    // The crate takes column stride, then row stride; dst = 0 dst + 1 A B.
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
            csb,
            rsb,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// C = A B over row blocks, one single-threaded call per rayon thread. `b_t`: B is stored as
/// [n, k] and read transposed (the Linear layer's W).
fn split(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], b_t: bool, c: &mut [f32], use_gemm: bool) {
    let chunk = m.div_ceil(THREADS);
    let (rsb, csb) = if b_t { (1isize, k as isize) } else { (n as isize, 1isize) };
    c.par_chunks_mut(chunk * n).zip(a.par_chunks(chunk * k)).for_each(|(c, a)| {
        let rows = a.len() / k;
        if use_gemm {
            return gemm_crate(rows, k, n, a, b, (rsb, csb), c, gemm::Parallelism::None);
        }
        // SAFETY: a is [rows, k], b [k, n] through (rsb, csb), c [rows, n], all in bounds.
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
                rsb,
                csb,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    });
}

fn main() {
    rayon::ThreadPoolBuilder::new().num_threads(THREADS).build_global().unwrap();
    let shapes: [(usize, usize, usize, bool, &str); 7] = [
        (1024, 256, 64, true, "nn suite Linear"),
        (8192, 256, 64, true, "nn suite Linear"),
        (1024, 1024, 1024, false, "square"),
        (16384, 128, 128, true, "MLP forward, x W^T"),
        (16384, 128, 128, false, "MLP input gradient, dy W"),
        (100, 784, 500, false, "RBM hidden step"),
        (32, 144, 256 * 64, false, "UvA conv2 W col"),
    ];
    for &(m, k, n, b_t, what) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = ((4e8 / (m * k * n) as f64) as usize).max(1);
        let mut time = |f: &mut dyn FnMut(&mut [f32])| {
            f(&mut c);
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    f(&mut c);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            flops / best / 1e9
        };
        let mm = time(&mut |c| split(m, k, n, &a, &b, b_t, c, false));
        let gemm_split = time(&mut |c| split(m, k, n, &a, &b, b_t, c, true));
        let gemm_own = time(&mut |c| {
            let strides = if b_t { (1isize, k as isize) } else { (n as isize, 1isize) };
            gemm_crate(m, k, n, &a, &b, strides, c, gemm::Parallelism::Rayon(THREADS));
        });
        println!(
            "{m}x{k} -> {n} ({what}): matrixmultiply {mm:.1}, gemm split {gemm_split:.1}, gemm own threads {gemm_own:.1} GFLOP/s"
        );
    }
}
