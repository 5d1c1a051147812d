//! The CPU executor's one matrix product: C = alpha A B + beta C on f32 matrices with explicit
//! strides, through the `gemm` crate (AVX2+FMA or NEON kernels chosen at run time; its AVX-512
//! ones need a nightly compiler). Chosen over matrixmultiply by measurement (BENCHMARKS.md): MLP
//! sampling 8-12 % faster, convolution and RBM training even. Single-threaded: callers split
//! rows over rayon's threads.

/// C[m, n] = alpha A[m, k] B[k, n] + beta C, each operand given as (row stride, column
/// stride). With beta = 0, C's old values are never read (NaNs in it do not leak). Panics when
/// an operand is too short for its shape and strides, so the unsafe call below stays in bounds.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    (rsc, csc): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // The last element each operand reaches.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, rsc, csc) < c.len(), "sgemm: output too short");
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let x = &mut c[i * rsc + j * csc];
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    assert!(last(m, k, rsa, csa) < a.len() && last(k, n, rsb, csb) < b.len(), "sgemm: operand too short");
    // SAFETY: every index the kernel touches was bounds-checked above. The crate's convention
    // is dst = alpha_dst dst + beta_product lhs rhs, with column stride before row stride.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            csc as isize,
            rsc as isize,
            beta != 0.0,
            a.as_ptr(),
            csa as isize,
            rsa as isize,
            b.as_ptr(),
            csb as isize,
            rsb as isize,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::sgemm;

    /// Against the f64 triple loop, with transposed and strided operands, beta 0 over NaNs,
    /// beta 1 accumulating, alpha scaling and k = 0.
    #[test]
    fn matches_the_triple_loop() {
        let (m, k, n) = (13, 37, 19);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
        let reference = |alpha: f64, beta: f64, c0: &[f32]| -> Vec<f64> {
            let mut out = vec![0.0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
                    out[i * n + j] = alpha * dot + if beta == 0.0 { 0.0 } else { beta * c0[i * n + j] as f64 };
                }
            }
            out
        };
        let close = |got: &[f32], want: &[f64]| {
            got.iter().zip(want).all(|(g, w)| (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()))
        };
        // A row-major, B row-major, C preset to NaN with beta = 0.
        let mut c = vec![f32::NAN; m * n];
        sgemm(m, k, n, 1.0, &a, (k, 1), &b, (n, 1), 0.0, &mut c, (n, 1));
        assert!(close(&c, &reference(1.0, 0.0, &c)));
        // B given transposed (as [n, k] read through strides), C accumulated with alpha.
        let bt: Vec<f32> = (0..n * k).map(|q| b[(q % k) * n + q / k]).collect();
        let c0: Vec<f32> = (0..m * n).map(|i| i as f32 / 10.0).collect();
        let mut c = c0.clone();
        sgemm(m, k, n, -0.5, &a, (k, 1), &bt, (1, k), 1.0, &mut c, (n, 1));
        assert!(close(&c, &reference(-0.5, 1.0, &c0)));
        // C column-major (the transpose written through strides).
        let mut ct = vec![0.0f32; m * n];
        sgemm(m, k, n, 1.0, &a, (k, 1), &b, (n, 1), 0.0, &mut ct, (1, m));
        let want = reference(1.0, 0.0, &c0);
        assert!((0..m * n).all(|q| (ct[(q % n) * m + q / n] as f64 - want[q]).abs() <= 1e-5 * (1.0 + want[q].abs())));
        // k = 0: C = beta C.
        let mut c = c0.clone();
        sgemm(m, 0, n, 1.0, &[], (0, 1), &[], (n, 1), 2.0, &mut c, (n, 1));
        assert!(c.iter().zip(&c0).all(|(x, y)| *x == 2.0 * y));
    }
}
