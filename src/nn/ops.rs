//! The CPU executor's layer operations on a batch (f32, row-major, images NCHW), and the CPU
//! twins of the WGSL kernels in `shaders/nn/nn_gemm.wgsl` and `shaders/nn/nn_conv2d.wgsl`. Dense
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

/// C[m, n] = A B + beta * C with explicit strides (row stride, column stride): matrixmultiply's
/// sgemm behind bounds checks (public so the benchmarks time the same call as raw sgemm).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
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
    // Bounds the raw-pointer call below: the last element each operand reaches.
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(k == 0 || (last(m, k, rsa, csa) < a.len() && last(k, n, rsb, csb) < b.len()), "gemm: operand too short");
    assert!(last(m, n, rsc, csc) < c.len(), "gemm: output too short");
    // SAFETY: every index the kernel touches was bounds-checked above.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// y[n, out] = x[n, in] W^T + b for W [out, in].
pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, n: usize, inputs: usize, outputs: usize, y: &mut [f32]) {
    if outputs == 1 {
        // An energy's last layer: a dot product per row, which a GEMM would pack for nothing.
        let b = b.map_or(0.0, |b| b[0]);
        y[..n].iter_mut().zip(x.chunks_exact(inputs)).for_each(|(y, row)| *y = dot(row, &w[..inputs]) + b);
        return;
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
    } else {
        gemm(n, outputs, inputs, dy, (outputs, 1), w, (inputs, 1), 0.0, dx, (inputs, 1));
    }
}

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

/// Images per im2col block: keeps the column matrix near 1 MiB.
/// Blocks of equal size (no small tail block that would run a short GEMM).
fn block_images(g: &ConvGeom) -> usize {
    let per_image = g.patch() * g.out_h() * g.out_w();
    let most = ((1 << 18) / per_image.max(1)).clamp(1, g.batch.max(1));
    g.batch.div_ceil(g.batch.div_ceil(most).max(1)).max(1)
}

/// The block's images zero-padded ([img, c, in_h + 2 pad, in_w + 2 pad]) and the gather table
/// that makes im2col one branch-free gather per column-matrix row:
/// `col[p, j] = padded[offset(p) + index[j]]` with p = (c, ky, kx),
/// offset(p) = (c * ph + ky) * pw + kx and, for j = img * ohw + oy * ow + ox,
/// index[j] = img * in_c * ph * pw + (oy * pw + ox) * stride.
struct Gather {
    padded: Vec<f32>,
    index: Vec<u32>,
}

impl Gather {
    const fn new() -> Self {
        Self { padded: Vec::new(), index: Vec::new() }
    }

    fn padded_dims(g: &ConvGeom) -> (usize, usize) {
        (g.in_h + 2 * g.pad, g.in_w + 2 * g.pad)
    }

    /// Sizes the padded buffer (zeroed) and builds the index table for block geometry `g`.
    fn prepare(&mut self, g: &ConvGeom) {
        let (ph, pw) = Self::padded_dims(g);
        let (oh, ow) = (g.out_h(), g.out_w());
        let plane = g.in_c * ph * pw;
        assert!(g.batch * plane <= u32::MAX as usize, "conv2d: a block of padded images exceeds 2^32 values");
        self.padded.clear();
        self.padded.resize(g.batch * plane, 0.0);
        self.index.clear();
        for img in 0..g.batch {
            for oy in 0..oh {
                for ox in 0..ow {
                    self.index.push((img * plane + (oy * pw + ox) * g.stride) as u32);
                }
            }
        }
    }

    /// p = (c, ky, kx) -> offset(p), in column-matrix row order.
    fn row_offsets(g: &ConvGeom) -> impl Iterator<Item = usize> {
        let (ph, pw) = Self::padded_dims(g);
        let (kh, kw) = (g.kh, g.kw);
        (0..g.in_c).flat_map(move |c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c * ph + ky) * pw + kx)))
    }
}

/// col[p, img * ohw + pos] = padded x of image `img` under kernel offset p at output pixel pos.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32], gather: &mut Gather) {
    gather.prepare(g);
    let (ph, pw) = Gather::padded_dims(g);
    for (dst, src) in
        gather.padded.chunks_exact_mut(ph * pw).zip(x[..g.batch * g.in_len()].chunks_exact(g.in_h * g.in_w))
    {
        for (drow, srow) in dst[g.pad * pw..].chunks_exact_mut(pw).zip(src.chunks_exact(g.in_w)) {
            drow[g.pad..g.pad + g.in_w].copy_from_slice(srow);
        }
    }
    let cols = gather.index.len();
    let padded = &gather.padded[..];
    for (row, offset) in col.chunks_exact_mut(cols).zip(Gather::row_offsets(g)) {
        let src = &padded[offset..];
        row.iter_mut().zip(&gather.index).for_each(|(o, &i)| *o = src[i as usize]);
    }
}

/// The adjoint of [`im2col`]: dx = the column matrix scattered back onto the images (every
/// pixel of the block's images is written once, so dx needs no clearing first).
fn col2im(g: &ConvGeom, col: &[f32], dx: &mut [f32], gather: &mut Gather) {
    gather.prepare(g);
    let cols = gather.index.len();
    let index = &gather.index;
    for (row, offset) in col.chunks_exact(cols).zip(Gather::row_offsets(g)) {
        let dst = &mut gather.padded[offset..];
        row.iter().zip(index).for_each(|(v, &i)| dst[i as usize] += v);
    }
    let (ph, pw) = Gather::padded_dims(g);
    for (src, dst) in
        gather.padded.chunks_exact(ph * pw).zip(dx[..g.batch * g.in_len()].chunks_exact_mut(g.in_h * g.in_w))
    {
        for (srow, drow) in src[g.pad * pw..].chunks_exact(pw).zip(dst.chunks_exact_mut(g.in_w)) {
            drow.copy_from_slice(&srow[g.pad..g.pad + g.in_w]);
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

thread_local! {
    /// Column and output matrices reused across calls on this thread (callers run the ops on
    /// rayon workers: one pair per worker, about a megabyte each), so no call allocates or
    /// zero-fills them anew.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>, Gather)> = const { std::cell::RefCell::new((Vec::new(), Vec::new(), Gather::new())) };
}

/// Runs `f` with this thread's scratch matrices (fresh ones if they are in use).
fn with_scratch<T>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>, &mut Gather) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            let (a, b, c) = &mut *s;
            f(a, b, c)
        }
        Err(_) => f(&mut Vec::new(), &mut Vec::new(), &mut Gather::new()),
    })
}

/// y[n, oc, oh, ow] = conv(x, w) + b.
pub fn conv2d_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let ohw = g.out_h() * g.out_w();
    with_scratch(|col, out, gather| {
        for_blocks(g, |gb, first| {
            let cols = gb.batch * ohw;
            col.resize(gb.patch() * cols, 0.0);
            out.resize(g.out_c * cols, 0.0);
            im2col(gb, &x[first * g.in_len()..], col, gather);
            gemm(g.out_c, g.patch(), cols, w, (g.patch(), 1), col, (cols, 1), 0.0, out, (cols, 1));
            for img in 0..gb.batch {
                for oc in 0..g.out_c {
                    let bias = b.map_or(0.0, |b| b[oc]);
                    let dst = &mut y[(first + img) * g.out_len() + oc * ohw..][..ohw];
                    dst.iter_mut().zip(&out[oc * cols + img * ohw..][..ohw]).for_each(|(d, v)| *d = v + bias);
                }
            }
        })
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
    with_scratch(|col, dyg, gather| {
        for_blocks(g, |gb, first| {
            let cols = gb.batch * g.out_h() * g.out_w();
            gather_dy(g, gb, first, dy, dyg);
            col.resize(gb.patch() * cols, 0.0);
            // dcol[patch, cols] = W^T [patch, oc] dy [oc, cols]
            gemm(g.patch(), g.out_c, cols, w, (1, g.patch()), dyg, (cols, 1), 0.0, col, (cols, 1));
            col2im(gb, col, &mut dx[first * g.in_len()..], gather);
        })
    });
}

/// dw[oc, ic, kh, kw] += sum over the batch of dy x patches; db[oc] += sum of dy.
pub fn conv2d_backward_params(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32], mut db: Option<&mut [f32]>) {
    with_scratch(|col, dyg, gather| {
        for_blocks(g, |gb, first| {
            let cols = gb.batch * g.out_h() * g.out_w();
            gather_dy(g, gb, first, dy, dyg);
            col.resize(gb.patch() * cols, 0.0);
            im2col(gb, &x[first * g.in_len()..], col, gather);
            // dw[oc, patch] += dy [oc, cols] col^T [cols, patch]
            gemm(g.out_c, cols, g.patch(), dyg, (cols, 1), col, (1, cols), 1.0, dw, (g.patch(), 1));
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().zip(dyg.chunks_exact(cols)).for_each(|(d, row)| *d += row.iter().sum::<f32>());
            }
        })
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
