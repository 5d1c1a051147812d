//! The CPU executor's layer operations on a batch (f32, row-major, images NCHW), and the CPU
//! twins of the WGSL kernels in `shaders/nn_gemm.wgsl` and `shaders/nn_conv2d.wgsl`. Dense
//! layers are one sgemm (matrixmultiply); convolutions are im2col over a block of images + one
//! sgemm, so the GEMM sees N = images x output pixels rather than one image's pixels.
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
    fn with_batch(&self, batch: usize) -> Self {
        Self { batch, ..*self }
    }
}

/// C[m, n] = alpha * A B + beta * C with explicit strides (row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn gemm(m: usize, k: usize, n: usize, a: &[f32], (rsa, csa): (usize, usize), b: &[f32], (rsb, csb): (usize, usize), beta: f32, c: &mut [f32], (rsc, csc): (usize, usize)) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds the raw-pointer call below: the last element each operand reaches.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(k == 0 || (last(m, k, rsa, csa) < a.len() && last(k, n, rsb, csb) < b.len()), "gemm: operand too short");
    assert!(last(m, n, rsc, csc) < c.len(), "gemm: output too short");
    // SAFETY: every index the kernel touches was bounds-checked above.
    unsafe {
        matrixmultiply::sgemm(
            m, k, n, 1.0, a.as_ptr(), rsa as isize, csa as isize, b.as_ptr(), rsb as isize, csb as isize, beta, c.as_mut_ptr(), rsc as isize,
            csc as isize,
        );
    }
}

/// y[n, out] = x[n, in] W^T + b for W [out, in].
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, n: usize, inputs: usize, outputs: usize, y: &mut [f32]) {
    gemm(n, inputs, outputs, x, (inputs, 1), w, (1, inputs), 0.0, y, (outputs, 1));
    if let Some(b) = b {
        y.chunks_exact_mut(outputs).for_each(|row| row.iter_mut().zip(b).for_each(|(v, bi)| *v += bi));
    }
}

/// dx[n, in] = dy[n, out] W (overwrites dx).
pub fn linear_backward_input(dy: &[f32], w: &[f32], n: usize, inputs: usize, outputs: usize, dx: &mut [f32]) {
    gemm(n, outputs, inputs, dy, (outputs, 1), w, (inputs, 1), 0.0, dx, (inputs, 1));
}

/// dw[out, in] += dy^T x and db[out] += sum over rows of dy.
pub fn linear_backward_params(x: &[f32], dy: &[f32], n: usize, inputs: usize, outputs: usize, dw: &mut [f32], db: Option<&mut [f32]>) {
    gemm(outputs, n, inputs, dy, (1, outputs), x, (inputs, 1), 1.0, dw, (inputs, 1));
    if let Some(db) = db {
        dy.chunks_exact(outputs).for_each(|row| db.iter_mut().zip(row).for_each(|(d, v)| *d += v));
    }
}

/// Images per im2col block: keeps the column matrix near 1 MiB.
fn block_images(g: &ConvGeom) -> usize {
    let per_image = g.patch() * g.out_h() * g.out_w();
    ((1 << 18) / per_image.max(1)).clamp(1, g.batch.max(1))
}

/// col[p, img * ohw + pos] = padded x of image `img` under kernel offset p at output pixel pos.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (ohw, cols) = (oh * ow, g.batch * oh * ow);
    for img in 0..g.batch {
        let xi = &x[img * g.in_len()..(img + 1) * g.in_len()];
        for c in 0..g.in_c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let row = &mut col[((c * g.kh + ky) * g.kw + kx) * cols + img * ohw..][..ohw];
                    for oy in 0..oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        let out = &mut row[oy * ow..(oy + 1) * ow];
                        if iy < 0 || iy >= g.in_h as isize {
                            out.fill(0.0);
                            continue;
                        }
                        let src = &xi[(c * g.in_h + iy as usize) * g.in_w..][..g.in_w];
                        for (ox, o) in out.iter_mut().enumerate() {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            *o = if ix >= 0 && ix < g.in_w as isize { src[ix as usize] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: dx += the column matrix scattered back onto the images.
fn col2im(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (ohw, cols) = (oh * ow, g.batch * oh * ow);
    for img in 0..g.batch {
        let di = &mut dx[img * g.in_len()..(img + 1) * g.in_len()];
        for c in 0..g.in_c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let row = &col[((c * g.kh + ky) * g.kw + kx) * cols + img * ohw..][..ohw];
                    for oy in 0..oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.in_h as isize {
                            continue;
                        }
                        let dst = &mut di[(c * g.in_h + iy as usize) * g.in_w..][..g.in_w];
                        for (ox, v) in row[oy * ow..(oy + 1) * ow].iter().enumerate() {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix >= 0 && ix < g.in_w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f(block geometry, first image)` over blocks of images.
fn for_blocks(g: &ConvGeom, mut f: impl FnMut(&ConvGeom, usize)) {
    let step = block_images(g);
    let mut first = 0;
    while first < g.batch {
        let gb = g.with_batch(step.min(g.batch - first));
        f(&gb, first);
        first += gb.batch;
    }
}

/// y[n, oc, oh, ow] = conv(x, w) + b.
pub fn conv2d_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let ohw = g.out_h() * g.out_w();
    let mut col = Vec::new();
    let mut out = Vec::new();
    for_blocks(g, |gb, first| {
        let cols = gb.batch * ohw;
        col.resize(gb.patch() * cols, 0.0);
        out.resize(g.out_c * cols, 0.0);
        im2col(gb, &x[first * g.in_len()..], &mut col);
        gemm(g.out_c, g.patch(), cols, w, (g.patch(), 1), &col, (cols, 1), 0.0, &mut out, (cols, 1));
        for img in 0..gb.batch {
            for oc in 0..g.out_c {
                let bias = b.map_or(0.0, |b| b[oc]);
                let dst = &mut y[(first + img) * g.out_len() + oc * ohw..][..ohw];
                dst.iter_mut().zip(&out[oc * cols + img * ohw..][..ohw]).for_each(|(d, v)| *d = v + bias);
            }
        }
    });
}

/// dy [n, oc, ohw] of images first.. as the [oc, images * ohw] matrix the GEMMs use.
fn gather_dy(g: &ConvGeom, gb: &ConvGeom, first: usize, dy: &[f32], out: &mut Vec<f32>) {
    let ohw = g.out_h() * g.out_w();
    let cols = gb.batch * ohw;
    out.resize(g.out_c * cols, 0.0);
    for img in 0..gb.batch {
        for oc in 0..g.out_c {
            out[oc * cols + img * ohw..][..ohw].copy_from_slice(&dy[(first + img) * g.out_len() + oc * ohw..][..ohw]);
        }
    }
}

/// dx = the gradient of sum(dy * conv(x, w)) with respect to x (overwrites dx).
pub fn conv2d_backward_input(g: &ConvGeom, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    dx[..g.batch * g.in_len()].fill(0.0);
    let mut col = Vec::new();
    let mut dyg = Vec::new();
    for_blocks(g, |gb, first| {
        let cols = gb.batch * g.out_h() * g.out_w();
        gather_dy(g, gb, first, dy, &mut dyg);
        col.resize(gb.patch() * cols, 0.0);
        // dcol[patch, cols] = W^T [patch, oc] dy [oc, cols]
        gemm(g.patch(), g.out_c, cols, w, (1, g.patch()), &dyg, (cols, 1), 0.0, &mut col, (cols, 1));
        col2im(gb, &col, &mut dx[first * g.in_len()..]);
    });
}

/// dw[oc, ic, kh, kw] += sum over the batch of dy x patches; db[oc] += sum of dy.
pub fn conv2d_backward_params(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32], mut db: Option<&mut [f32]>) {
    let mut col = Vec::new();
    let mut dyg = Vec::new();
    for_blocks(g, |gb, first| {
        let cols = gb.batch * g.out_h() * g.out_w();
        gather_dy(g, gb, first, dy, &mut dyg);
        col.resize(gb.patch() * cols, 0.0);
        im2col(gb, &x[first * g.in_len()..], &mut col);
        // dw[oc, patch] += dy [oc, cols] col^T [cols, patch]
        gemm(g.out_c, cols, g.patch(), &dyg, (cols, 1), &col, (1, cols), 1.0, dw, (g.patch(), 1));
        if let Some(db) = db.as_deref_mut() {
            db.iter_mut().zip(dyg.chunks_exact(cols)).for_each(|(d, row)| *d += row.iter().sum::<f32>());
        }
    });
}

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
