//! Convolutions on the CPU: im2col over a block of images + one sgemm, so the GEMM sees
//! N = images x output pixels rather than one image's pixels; the input gradient is the
//! transposed GEMM and im2col's adjoint, the weight gradient a GEMM against the same columns.

use super::{ConvGeom, gemm};

/// How a batch of images lies in memory; both keep each (image, channel) plane of h x w values
/// together, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// [n, c, h, w]: PyTorch's, each image's channels together.
    Nchw,
    /// [c, n, h, w]: each channel's planes of the whole batch together. A convolution over a
    /// block of images is then one GEMM whose operand rows (one per channel) lie in place, with
    /// no reordering before or after it. The CPU executor's tape keeps images this way.
    Cnhw,
}

impl Layout {
    /// Offset of image `img`'s plane of channel `c`, in a batch of `batch` images of `channels`
    /// planes of `plane` values.
    fn plane(self, img: usize, c: usize, batch: usize, channels: usize, plane: usize) -> usize {
        match self {
            Layout::Nchw => (img * channels + c) * plane,
            Layout::Cnhw => (c * batch + img) * plane,
        }
    }

    /// Copies `src` [batch, channels, plane] in layout `self` to `dst` in layout `to`.
    pub fn convert(self, to: Layout, batch: usize, channels: usize, plane: usize, src: &[f32], dst: &mut [f32]) {
        let len = batch * channels * plane;
        if self == to || channels == 1 || batch == 1 {
            return dst[..len].copy_from_slice(&src[..len]);
        }
        for img in 0..batch {
            for c in 0..channels {
                let (from, at) = (self.plane(img, c, batch, channels, plane), to.plane(img, c, batch, channels, plane));
                dst[at..at + plane].copy_from_slice(&src[from..from + plane]);
            }
        }
    }
}

/// Images per im2col block: a column matrix of about 256 KiB, which stays in the core's L2
/// cache between im2col and the GEMM, but at least 512 columns, so that layers of few output
/// pixels still give the GEMM a wide operand. Blocks of equal size (no short tail block).
fn block_images(g: &ConvGeom) -> usize {
    let (ohw, per_image) = (g.out_h() * g.out_w(), g.patch() * g.out_h() * g.out_w());
    let most = ((1 << 16) / per_image.max(1)).max(512usize.div_ceil(ohw.max(1))).clamp(1, g.batch.max(1));
    g.batch.div_ceil(g.batch.div_ceil(most).max(1)).max(1)
}

/// A block of images zero-padded and split into stride phases: padded pixel (Y, X) of image
/// `img`, channel `c` lies in phase plane (Y mod s, X mod s) at (Y / s, X / s), each phase plane
/// [ceil(ph / s), ceil(pw / s)] row-major, the planes of one image channel by channel. Kernel tap
/// (ky, kx) at output pixels (oy, 0..ow) then reads one contiguous run of its phase plane, so
/// im2col and its adjoint copy and add whole rows at any stride.
#[derive(Default)]
struct Padded {
    values: Vec<f32>,
    /// [`im2col`]'s offsets for short output rows.
    index: Vec<u32>,
}

/// Where [`Padded`] puts things, for one convolution.
#[derive(Clone, Copy)]
struct Phases {
    s: usize,
    pad: usize,
    /// One phase plane's rows and columns.
    rows: usize,
    cols: usize,
    /// Values of one image channel (s^2 phase planes) and of one image.
    channel: usize,
    image: usize,
}

impl Phases {
    fn new(g: &ConvGeom) -> Self {
        let s = g.stride;
        let (rows, cols) = ((g.in_h + 2 * g.pad).div_ceil(s), (g.in_w + 2 * g.pad).div_ceil(s));
        let channel = s * s * rows * cols;
        Self { s, pad: g.pad, rows, cols, channel, image: g.in_c * channel }
    }

    /// Offset of padded pixel (y, x) of channel c in its image.
    fn at(&self, c: usize, y: usize, x: usize) -> usize {
        let (s, cols) = (self.s, self.cols);
        c * self.channel + ((y % s) * s + x % s) * self.rows * cols + (y / s) * cols + x / s
    }

    /// Calls `f(offset in the block, img, c)` for every image channel of a block.
    #[inline(always)]
    fn for_planes(&self, g: &ConvGeom, count: usize, mut f: impl FnMut(usize, usize, usize)) {
        for img in 0..count {
            for c in 0..g.in_c {
                f(img * self.image + c * self.channel, img, c);
            }
        }
    }

    /// Offset in a channel's phase planes of padded row y + pad's first value (column phase 0),
    /// for stride s (= self.s, passed as a constant where it is one).
    #[inline(always)]
    fn row_start(&self, y: usize, s: usize) -> usize {
        let yy = y + self.pad;
        (yy % s) * s * self.rows * self.cols + (yy / s) * self.cols
    }
}

/// Moves every input value of a block to or from the padded block, one run at a time:
/// `run(i, at, n, S)` for the values i + S j (j < n) of the batch and at + j of the block, where
/// i counts from `plane(img, c)` + y in_w. Strides 1 and 2 get loops of their own, with the
/// stride a constant, so that the phase arithmetic is shifts and masks.
#[inline(always)]
#[allow(clippy::modulo_one)] // the stride-1 loop, where the phase arithmetic vanishes
fn for_runs(
    g: &ConvGeom,
    count: usize,
    plane: impl Fn(usize, usize) -> usize,
    mut run: impl FnMut(usize, usize, usize, usize),
) {
    let ph = Phases::new(g);
    let phase = ph.rows * ph.cols;
    macro_rules! with_stride {
        ($s:expr) => {
            ph.for_planes(g, count, |base, img, c| {
                let from = plane(img, c);
                for y in 0..g.in_h {
                    let at = base + ph.row_start(y, $s);
                    for rx in 0..$s {
                        // The first column x of this phase, (x + pad) mod S = rx, and the count.
                        let x0 = (rx + $s - ph.pad % $s) % $s;
                        if x0 < g.in_w {
                            let n = (g.in_w - x0).div_ceil($s);
                            run(from + y * g.in_w + x0, at + rx * phase + (x0 + ph.pad) / $s, n, $s);
                        }
                    }
                }
            })
        };
    }
    match ph.s {
        1 => with_stride!(1),
        2 => with_stride!(2),
        s => with_stride!(s),
    }
}

/// dst[j] = src[s j] for j < dst.len().
#[inline(always)]
fn gather_strided(dst: &mut [f32], src: &[f32], s: usize) {
    let n = dst.len();
    let whole = (src.len() / s).min(n);
    dst[..whole].iter_mut().zip(src.chunks_exact(s)).for_each(|(d, v)| *d = v[0]);
    for j in whole..n {
        dst[j] = src[s * j];
    }
}

/// dst[s j] = src[j] for j < src.len().
#[inline(always)]
fn scatter_strided(dst: &mut [f32], src: &[f32], s: usize) {
    let n = src.len();
    let whole = (dst.len() / s).min(n);
    dst.chunks_exact_mut(s).zip(&src[..whole]).for_each(|(d, v)| d[0] = *v);
    for j in whole..n {
        dst[s * j] = src[j];
    }
}

impl Padded {
    /// The images `first .. first + count` of the batch `x` (layout `layout`), padded.
    fn fill(&mut self, g: &ConvGeom, layout: Layout, first: usize, count: usize, x: &[f32]) {
        self.zero(g, count);
        let hw = g.in_h * g.in_w;
        let values = &mut self.values[..];
        let plane = |img, c| layout.plane(first + img, c, g.batch, g.in_c, hw);
        for_runs(g, count, plane, |i, at, n, s| gather_strided(&mut values[at..at + n], &x[i..i + s * (n - 1) + 1], s));
    }

    /// Zeroes the block's padded images, for [`col2im`] to add into.
    fn zero(&mut self, g: &ConvGeom, count: usize) {
        self.values.clear();
        self.values.resize(count * Phases::new(g).image, 0.0);
    }
}

/// Visits every (image, column-matrix row, output row) of a block: `f(p, img, oy, at)` with
/// p = (c, ky, kx) the row, and `at` the offset in the padded block of the input value under
/// output pixel (oy, 0): the run of ow values there is the one under output row oy.
#[inline(always)]
fn for_rows(g: &ConvGeom, count: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let ph = Phases::new(g);
    for img in 0..count {
        let mut p = 0;
        for c in 0..g.in_c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let at = img * ph.image + ph.at(c, ky, kx);
                    for oy in 0..g.out_h() {
                        f(p, img, oy, at + oy * ph.cols);
                    }
                    p += 1;
                }
            }
        }
    }
}

/// The offsets, relative to row p's first value, of every column of the column matrix in a
/// block of `count` images (for short output rows, gathered value by value).
fn column_offsets(g: &ConvGeom, count: usize, index: &mut Vec<u32>) {
    let ph = Phases::new(g);
    assert!(count * ph.image <= u32::MAX as usize, "conv2d: a block of padded images exceeds 2^32 values");
    index.clear();
    for img in 0..count {
        for oy in 0..g.out_h() {
            index.extend((0..g.out_w()).map(|ox| (img * ph.image + oy * ph.cols + ox) as u32));
        }
    }
}

/// Output rows at least this long (or exactly 4, a length the copies are compiled for) are
/// copied row by row; shorter ones go through an index table.
const MIN_ROW: usize = 8;

/// col[(c, ky, kx), img * ohw + oy * ow + ox] = x of image first + img, channel c, at
/// (oy stride + ky - pad, ox stride + kx - pad), zero outside the image.
fn im2col(g: &ConvGeom, layout: Layout, first: usize, count: usize, x: &[f32], col: &mut [f32], padded: &mut Padded) {
    padded.fill(g, layout, first, count, x);
    let (ow, ohw) = (g.out_w(), g.out_h() * g.out_w());
    let cols = count * ohw;
    let src = &padded.values[..];
    macro_rules! rows_of {
        ($n:expr) => {
            for_rows(g, count, |p, img, oy, at| {
                col[p * cols + img * ohw + oy * ow..][..$n].copy_from_slice(&src[at..at + $n])
            })
        };
    }
    if ow == 4 {
        rows_of!(4)
    } else if ow >= MIN_ROW {
        rows_of!(ow)
    } else {
        column_offsets(g, count, &mut padded.index);
        let ph = Phases::new(g);
        for (p, row) in col[..g.patch() * cols].chunks_exact_mut(cols).enumerate() {
            let (c, ky, kx) = (p / (g.kh * g.kw), p / g.kw % g.kh, p % g.kw);
            let src = &src[ph.at(c, ky, kx)..];
            row.iter_mut().zip(&padded.index).for_each(|(o, &i)| *o = src[i as usize]);
        }
    }
}

/// The adjoint of [`im2col`]'s gather: the column matrix added onto the zeroed padded block.
fn col2padded(g: &ConvGeom, count: usize, col: &[f32], padded: &mut Padded) {
    padded.zero(g, count);
    let (ow, ohw) = (g.out_w(), g.out_h() * g.out_w());
    let cols = count * ohw;
    let dst = &mut padded.values[..];
    macro_rules! rows_of {
        ($n:expr) => {
            for_rows(g, count, |p, img, oy, at| {
                let src = &col[p * cols + img * ohw + oy * ow..][..$n];
                dst[at..at + $n].iter_mut().zip(src).for_each(|(d, v)| *d += v);
            })
        };
    }
    if ow == 4 {
        rows_of!(4)
    } else if ow >= MIN_ROW {
        rows_of!(ow)
    } else {
        column_offsets(g, count, &mut padded.index);
        let ph = Phases::new(g);
        for (p, row) in col[..g.patch() * cols].chunks_exact(cols).enumerate() {
            let (c, ky, kx) = (p / (g.kh * g.kw), p / g.kw % g.kh, p % g.kw);
            let dst = &mut padded.values[ph.at(c, ky, kx)..];
            row.iter().zip(&padded.index).for_each(|(v, &i)| dst[i as usize] += v);
        }
    }
}

/// The adjoint of [`im2col`]: dx of images first.. = the column matrix added back onto the
/// images (every pixel of those images is written, so dx needs no clearing first).
fn col2im(g: &ConvGeom, layout: Layout, first: usize, count: usize, col: &[f32], dx: &mut [f32], padded: &mut Padded) {
    col2padded(g, count, col, padded);
    let hw = g.in_h * g.in_w;
    let values = &padded.values[..];
    let plane = |img, c| layout.plane(first + img, c, g.batch, g.in_c, hw);
    for_runs(g, count, plane, |i, at, n, s| scatter_strided(&mut dx[i..i + s * (n - 1) + 1], &values[at..at + n], s));
}

/// Runs `f(first image, images)` over blocks of the batch.
fn for_blocks(g: &ConvGeom, mut f: impl FnMut(usize, usize)) {
    let step = block_images(g);
    let mut first = 0;
    while first < g.batch {
        let count = step.min(g.batch - first);
        f(first, count);
        first += count;
    }
}

thread_local! {
    /// Column and output matrices reused across calls on this thread (callers run the ops on
    /// rayon workers: one set per worker, about a megabyte each), so no call allocates anew.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>, Padded)> = std::cell::RefCell::new(Default::default());
}

/// Runs `f` with this thread's scratch matrices (fresh ones if they are in use).
fn with_scratch<T>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>, &mut Padded) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            let (a, b, c) = &mut *s;
            f(a, b, c)
        }
        Err(_) => f(&mut Vec::new(), &mut Vec::new(), &mut Padded::default()),
    })
}

/// The output-side matrix [oc, images * ohw] of images first.. of `t` ([batch, oc, ohw] in
/// `layout`): in place for [`Layout::Cnhw`] (returned with its row stride), else copied into
/// `scratch`.
fn out_rows<'a>(
    g: &ConvGeom,
    layout: Layout,
    first: usize,
    count: usize,
    t: &'a [f32],
    scratch: &'a mut Vec<f32>,
) -> (&'a [f32], usize) {
    let ohw = g.out_h() * g.out_w();
    let cols = count * ohw;
    match layout {
        Layout::Cnhw => (&t[first * ohw..], g.batch * ohw),
        Layout::Nchw => {
            scratch.resize(g.out_c * cols, 0.0);
            for img in 0..count {
                for oc in 0..g.out_c {
                    scratch[oc * cols + img * ohw..][..ohw]
                        .copy_from_slice(&t[(first + img) * g.out_len() + oc * ohw..][..ohw]);
                }
            }
            (scratch, cols)
        }
    }
}

/// y[n, oc, oh, ow] = conv(x, w) + b, x and y in `layout`.
pub fn conv2d_forward(g: &ConvGeom, layout: Layout, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let ohw = g.out_h() * g.out_w();
    with_scratch(|col, out, padded| {
        for_blocks(g, |first, count| {
            let cols = count * ohw;
            col.resize(g.patch() * cols, 0.0);
            im2col(g, layout, first, count, x, col, padded);
            // The bias enters through the GEMM's epilogue (C = AB + 1 * C, C preset to it).
            let (c, rs) = match layout {
                Layout::Cnhw => (&mut y[first * ohw..], g.batch * ohw),
                Layout::Nchw => {
                    out.resize(g.out_c * cols, 0.0);
                    (&mut out[..], cols)
                }
            };
            let beta = match b {
                Some(b) => {
                    (0..g.out_c).for_each(|oc| c[oc * rs..][..cols].fill(b[oc]));
                    1.0
                }
                None => 0.0,
            };
            gemm(g.out_c, g.patch(), cols, w, (g.patch(), 1), col, (cols, 1), beta, c, (rs, 1));
            if layout == Layout::Nchw {
                for img in 0..count {
                    for oc in 0..g.out_c {
                        y[(first + img) * g.out_len() + oc * ohw..][..ohw]
                            .copy_from_slice(&out[oc * cols + img * ohw..][..ohw]);
                    }
                }
            }
        })
    });
}

/// dx = the gradient of sum(dy * conv(x, w)) with respect to x (overwrites dx), in `layout`.
pub fn conv2d_backward_input(g: &ConvGeom, layout: Layout, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    with_scratch(|col, dyg, padded| {
        for_blocks(g, |first, count| {
            let cols = count * g.out_h() * g.out_w();
            let (dyb, rs) = out_rows(g, layout, first, count, dy, dyg);
            col.resize(g.patch() * cols, 0.0);
            // dcol[patch, cols] = W^T [patch, oc] dy [oc, cols]
            gemm(g.patch(), g.out_c, cols, w, (1, g.patch()), dyb, (rs, 1), 0.0, col, (cols, 1));
            col2im(g, layout, first, count, col, dx, padded);
        })
    });
}

/// dw[oc, ic, kh, kw] += sum over the batch of dy x patches; db[oc] += sum of dy; x and dy in
/// `layout`.
pub fn conv2d_backward_params(
    g: &ConvGeom,
    layout: Layout,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
) {
    with_scratch(|col, dyg, padded| {
        for_blocks(g, |first, count| {
            let cols = count * g.out_h() * g.out_w();
            let (dyb, rs) = out_rows(g, layout, first, count, dy, dyg);
            col.resize(g.patch() * cols, 0.0);
            im2col(g, layout, first, count, x, col, padded);
            // dw[oc, patch] += dy [oc, cols] col^T [cols, patch]
            gemm(g.out_c, cols, g.patch(), dyb, (rs, 1), col, (1, cols), 1.0, dw, (g.patch(), 1));
            if let Some(db) = db.as_deref_mut() {
                db.iter_mut().enumerate().for_each(|(oc, d)| *d += dyb[oc * rs..][..cols].iter().sum::<f32>());
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution summed tap by tap in f64 ([n, c, h, w]): y, and the gradients of
    /// sum(dy * y) with respect to x, w and b.
    fn direct(g: &ConvGeom, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 4] {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut out = [vec![0.0; g.batch * g.out_len()], vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; g.out_c]];
        for n in 0..g.batch {
            for oc in 0..g.out_c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let o = ((n * g.out_c + oc) * oh + oy) * ow + ox;
                        out[3][oc] += dy[o] as f64;
                        crate::nn::reference::for_taps(g, oy, ox, |c, ky, kx, at| {
                            let i = n * g.in_len() + at;
                            let k = ((oc * g.in_c + c) * g.kh + ky) * g.kw + kx;
                            out[0][o] += w[k] as f64 * x[i] as f64;
                            out[1][i] += w[k] as f64 * dy[o] as f64;
                            out[2][k] += x[i] as f64 * dy[o] as f64;
                        });
                    }
                }
            }
        }
        out
    }

    fn values(seed: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1 << 23) as f32 - 1.0)
            .collect()
    }

    #[test]
    fn both_layouts_match_the_direct_convolution() {
        let geom = |batch, in_c, in_h, in_w, out_c, k, stride, pad| ConvGeom {
            batch,
            in_c,
            in_h,
            in_w,
            out_c,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        for g in [
            geom(3, 1, 28, 28, 16, 5, 2, 4),
            geom(5, 3, 13, 11, 7, 3, 2, 1),
            geom(2, 4, 9, 10, 3, 1, 2, 0),
            geom(2, 2, 11, 9, 3, 4, 3, 2),
            geom(3, 2, 12, 7, 2, 2, 5, 1),
            geom(4, 16, 12, 12, 8, 3, 1, 1),
            geom(70, 64, 4, 4, 64, 3, 2, 1),
        ] {
            let (x, w, b, dy) = (
                values(1, g.batch * g.in_len()),
                values(2, g.out_c * g.patch()),
                values(3, g.out_c),
                values(4, g.batch * g.out_len()),
            );
            let [y_want, dx_want, dw_want, db_want] = direct(&g, &x, &w, &dy);
            let tol = 1e-4 * (g.patch() * g.out_c) as f64;
            let close = |what: &str, got: &[f32], want: &[f64], plus: f64| {
                for (i, (&a, &e)) in got.iter().zip(want).enumerate() {
                    assert!((a as f64 - e - plus).abs() < tol, "{g:?} {what}[{i}]: {a} against {}", e + plus);
                }
            };
            for layout in [Layout::Nchw, Layout::Cnhw] {
                let (c_in, c_out) = (
                    |v: &[f32], c, hw| {
                        let mut t = vec![0.0; v.len()];
                        Layout::Nchw.convert(layout, g.batch, c, hw, v, &mut t);
                        t
                    },
                    |v: &[f32], c, hw| {
                        let mut t = vec![0.0; v.len()];
                        layout.convert(Layout::Nchw, g.batch, c, hw, v, &mut t);
                        t
                    },
                );
                let (ihw, ohw) = (g.in_h * g.in_w, g.out_h() * g.out_w());
                let (xl, dyl) = (c_in(&x, g.in_c, ihw), c_in(&dy, g.out_c, ohw));
                let mut y = vec![f32::NAN; dy.len()];
                conv2d_forward(&g, layout, &xl, &w, Some(&b), &mut y);
                let bias: Vec<f64> = (0..y.len()).map(|o| b[o / ohw % g.out_c] as f64).collect();
                let y = c_out(&y, g.out_c, ohw);
                for (i, v) in y.iter().enumerate() {
                    assert!((*v as f64 - y_want[i] - bias[i]).abs() < tol, "{g:?} {layout:?} y[{i}]");
                }
                let mut dx = vec![f32::NAN; x.len()];
                conv2d_backward_input(&g, layout, &dyl, &w, &mut dx);
                close(&format!("{layout:?} dx"), &c_out(&dx, g.in_c, ihw), &dx_want, 0.0);
                let (mut dw, mut db) = (vec![1.0; w.len()], vec![1.0; b.len()]);
                conv2d_backward_params(&g, layout, &xl, &dyl, &mut dw, Some(&mut db));
                close(&format!("{layout:?} dw"), &dw, &dw_want, 1.0);
                close(&format!("{layout:?} db"), &db, &db_want, 1.0);
            }
        }
    }
}
