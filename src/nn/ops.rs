//! The CPU executor's layer operations on a batch (f32, row-major; images in either
//! [`Layout`]), and the CPU twins of the WGSL kernels in `shaders/nn/nn_gemm.wgsl` and
//! `shaders/nn/nn_conv2d.wgsl`. Dense layers are one sgemm ([`crate::num::matmul`]), or for at most
//! four inputs a sum of weight columns; convolutions are in [`conv`].
//! Single-threaded: callers parallelise over blocks of points. The f64 definitions these are
//! tested against live in [`super::reference`].

/// Shape of a 2-D convolution over a batch (PyTorch's Conv2d: weight [out_c, in_c, kh, kw],
/// zero padding on every side, one stride for both axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad - self.kh) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of the im2col matrix: in_c * kh * kw.
    pub fn patch(&self) -> usize {
        self.in_c * self.kh * self.kw
    }
    pub fn in_len(&self) -> usize {
        self.in_c * self.in_h * self.in_w
    }
    pub fn out_len(&self) -> usize {
        self.out_c * self.out_h() * self.out_w()
    }
    /// Multiply-adds of one image's forward pass.
    pub fn macs(&self) -> u64 {
        (self.out_len() * self.patch()) as u64
    }
}

/// C[m, n] = A B + beta * C with explicit strides (row stride, column stride): the executor's
/// sgemm ([`crate::num::matmul::sgemm`]) with alpha = 1 (public so the benchmarks time the same
/// call as raw sgemm).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_strides: (usize, usize),
) {
    crate::num::matmul::sgemm(m, k, n, 1.0, a, a_strides, b, b_strides, beta, c, c_strides);
}

/// y[n, out] = x[n, in] W^T + b for W [out, in].
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, n: usize, inputs: usize, outputs: usize, y: &mut [f32]) {
    if outputs == 1 {
        // An energy's last layer: a dot product per row, which a GEMM would pack for nothing.
        let b = b.map_or(0.0, |b| b[0]);
        y[..n].iter_mut().zip(x.chunks_exact(inputs)).for_each(|(y, row)| *y = dot(row, &w[..inputs]) + b);
        return;
    }
    if inputs <= NARROW {
        return narrow_forward(x, w, b.unwrap_or(&[]), n, inputs, outputs, y);
    }
    // The bias enters through the GEMM's epilogue (C = AB + 1 * C with C preset to the bias
    // rows), so y is written once instead of twice.
    let beta = match b {
        Some(b) => {
            y[..n * outputs].chunks_exact_mut(outputs).for_each(|row| row.copy_from_slice(&b[..outputs]));
            1.0
        }
        None => 0.0,
    };
    gemm(n, inputs, outputs, x, (inputs, 1), w, (1, inputs), beta, y, (outputs, 1));
}

/// dx[n, in] = dy[n, out] W (overwrites dx).
pub fn linear_backward_input(dy: &[f32], w: &[f32], n: usize, inputs: usize, outputs: usize, dx: &mut [f32]) {
    if outputs == 1 {
        // An outer product: each row is the weight row scaled by the point's dy.
        for (row, d) in dx.chunks_exact_mut(inputs).zip(&dy[..n]) {
            row.iter_mut().zip(&w[..inputs]).for_each(|(v, wi)| *v = d * wi);
        }
    } else if inputs <= NARROW {
        narrow_backward_input(dy, w, n, inputs, outputs, dx);
    } else {
        gemm(n, outputs, inputs, dy, (outputs, 1), w, (inputs, 1), 0.0, dx, (inputs, 1));
    }
}

/// Layers with at most this many inputs (a 2-D energy's first layer) skip the GEMM, whose
/// packing would outweigh its k <= 4 multiply-adds per output.
const NARROW: usize = 4;

/// The columns of W [out, in] as rows, [in, out].
fn columns(w: &[f32], inputs: usize, outputs: usize) -> Vec<f32> {
    (0..inputs).flat_map(|k| (0..outputs).map(move |o| w[o * inputs + k])).collect()
}

crate::simd::vectorized!(
    /// [`linear_forward`] for a narrow layer: each output row is b plus the input-weighted sum
    /// of W's columns (b empty: no bias).
    fn narrow_forward(x: &[f32], w: &[f32], b: &[f32], n: usize, inputs: usize, outputs: usize, y: &mut [f32]) {
        let cols = columns(w, inputs, outputs);
        for (row, xs) in y[..n * outputs].chunks_exact_mut(outputs).zip(x.chunks_exact(inputs)) {
            match b.is_empty() {
                true => row.fill(0.0),
                false => row.copy_from_slice(&b[..outputs]),
            }
            for (col, &xk) in cols.chunks_exact(outputs).zip(xs) {
                row.iter_mut().zip(col).for_each(|(v, c)| *v += xk * c);
            }
        }
    }
);

crate::simd::vectorized!(
    /// [`linear_backward_input`] for a narrow layer: dx[r, k] = dy[r] . (column k of W).
    fn narrow_backward_input(dy: &[f32], w: &[f32], n: usize, inputs: usize, outputs: usize, dx: &mut [f32]) {
        let cols = columns(w, inputs, outputs);
        for (d, g) in dx[..n * inputs].chunks_exact_mut(inputs).zip(dy.chunks_exact(outputs)) {
            d.iter_mut().zip(cols.chunks_exact(outputs)).for_each(|(v, col)| *v = dot(g, col));
        }
    }
);

/// Dot product with eight running sums, which the compiler keeps in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// dw[out, in] += dy^T x and db[out] += sum over rows of dy.
pub fn linear_backward_params(
    x: &[f32],
    dy: &[f32],
    n: usize,
    inputs: usize,
    outputs: usize,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    gemm(outputs, n, inputs, dy, (1, outputs), x, (inputs, 1), 1.0, dw, (inputs, 1));
    if let Some(db) = db {
        dy.chunks_exact(outputs).for_each(|row| db.iter_mut().zip(row).for_each(|(d, v)| *d += v));
    }
}

mod conv;
pub use conv::{Layout, conv2d_backward_input, conv2d_backward_params, conv2d_forward};

/// Mean over k x k windows with stride k (PyTorch's AvgPool2d(k): the output size rounds down).
/// x [batch_channels, h, w] -> y [batch_channels, h / k, w / k].
pub fn avgpool2d_forward(batch_channels: usize, h: usize, w: usize, k: usize, x: &[f32], y: &mut [f32]) {
    let (oh, ow) = (h / k, w / k);
    let scale = 1.0 / (k * k) as f32;
    for bc in 0..batch_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = 0.0;
                for dy in 0..k {
                    s += x[(bc * h + oy * k + dy) * w + ox * k..][..k].iter().sum::<f32>();
                }
                y[(bc * oh + oy) * ow + ox] = s * scale;
            }
        }
    }
}

/// The input gradient of [`avgpool2d_forward`] (overwrites dx; pixels no window covers get 0).
pub fn avgpool2d_backward(batch_channels: usize, h: usize, w: usize, k: usize, dy: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (h / k, w / k);
    let scale = 1.0 / (k * k) as f32;
    dx[..batch_channels * h * w].fill(0.0);
    for bc in 0..batch_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let v = dy[(bc * oh + oy) * ow + ox] * scale;
                for dyy in 0..k {
                    dx[(bc * h + oy * k + dyy) * w + ox * k..][..k].iter_mut().for_each(|d| *d = v);
                }
            }
        }
    }
}
