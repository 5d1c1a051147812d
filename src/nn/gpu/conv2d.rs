//! Convolutions as implicit GEMMs (`shaders/nn/nn_conv2d.wgsl`): forward with the epilogue,
//! input gradients (a direct kernel), weight gradients. CPU twins: `conv2d_*` in src/nn/ops.rs.

use super::*;
use crate::gpu::ContextInternals;

impl NnKernels {
    /// `y = act(conv2d(x, w) + b)`, NCHW, `w` [out_c, in_c, kh, kw].
    pub fn conv2d_forward(&self, g: &ConvGeom, x: Slice, w: Slice, y: Slice, epi: Epilogue) -> Result<NnOp> {
        let what = "conv2d forward";
        let (oh, ow) = self.check_geom(what, g)?;
        let plan = self.plan(what, g.out_c, g.batch * oh * ow, g.in_c * g.kh * g.kw, false)?;
        self.check_slice("conv2d input", x, g.batch * g.in_c * g.in_h * g.in_w)?;
        self.check_slice("conv2d weight", w, g.out_c * g.in_c * g.kh * g.kw)?;
        let out_len = g.batch * g.out_c * oh * ow;
        self.check_slice("conv2d output", y, out_len)?;
        let (flags, bias, z) = self.epilogue(what, epi, g.out_c, out_len, EPI_BIAS_ROW, y)?;
        self.scoped(what, || {
            let kernel = self.tile_kernel("nn/nn_conv2d.wgsl", "conv2d", epi.act, &plan)?;
            let base = ConvParams {
                a_off: w.offset as u32,
                b_off: x.offset as u32,
                z_off: z.offset as u32,
                bias_off: bias.offset as u32,
                flags,
                cols_per_img: (oh * ow) as u32,
                ..conv_params(g, MODE_FORWARD, &plan)
            };
            let (steps, scratch) = self.gemm_steps(
                what,
                &plan,
                kernel,
                |extra, c_off, split_stride| {
                    Box::new(ConvParams { flags: base.flags | extra, c_off, split_stride, ..base })
                },
                [w.buffer, x.buffer, y.buffer, bias.buffer, z.buffer],
                y,
                false,
            )?;
            Ok(self.op(format!("conv2d {g:?}"), steps, scratch))
        })
    }

    /// `dx` = the gradient of `sum(dy * conv2d(x, w))` with respect to x (overwrites dx).
    ///
    /// One dispatch of `nn_conv2d.wgsl:conv2d_input_grad`, the gather form split into the
    /// stride's s x s phases (each a dense stride-1 window over dy, no zeros): input pixels are
    /// spread over the threads, [`IG_PIXELS`] per workgroup, and each thread keeps `cb` input
    /// channels (the shader's `IG_CB`), chosen here from in_c, the workgroup weight array and
    /// the adapter's loop budget.
    pub fn conv2d_backward_input(&self, g: &ConvGeom, dy: Slice, w: Slice, dx: Slice) -> Result<NnOp> {
        let what = "conv2d input gradient";
        let (oh, ow) = self.check_geom(what, g)?;
        self.check_slice("conv2d output gradient", dy, g.batch * g.out_c * oh * ow)?;
        self.check_slice("conv2d weight", w, g.out_c * g.in_c * g.kh * g.kw)?;
        self.check_slice("conv2d input gradient", dx, g.batch * g.in_c * g.in_h * g.in_w)?;
        let s = g.stride;
        // Phase (0, 0) has the most taps and pixels.
        let (ty, tx) = (g.kh.div_ceil(s), g.kw.div_ceil(s));
        let taps = ty * tx;
        if taps > IG_WLEN {
            return Err(Error::Limit(format!(
                "{what}: {g:?} has {taps} taps per stride phase; the kernel holds at most {IG_WLEN}"
            )));
        }
        // Loop iterations per invocation with cb channels per thread: the weight staging, the
        // taps (the channel loop counted as not unrolled) and the epilogue.
        let iterations = |cb: usize| {
            let per_chunk = (IG_WLEN / (taps * cb)).max(1);
            let chunks = g.out_c.div_ceil(per_chunk);
            (chunks * (per_chunk * taps * cb).div_ceil(IG_WG) + g.out_c * (ty + taps * (1 + cb)) + 4 * (cb + 2) + 8)
                as u64
        };
        let mut cb = g.in_c.next_power_of_two().min(IG_MAX_CB);
        while cb > 1 && (taps * cb > IG_WLEN || self.ctx.check_loop_budget(what, iterations(cb)).is_err()) {
            cb /= 2;
        }
        self.ctx.check_loop_budget(what, iterations(cb))?;
        let pixels = g.batch * g.in_h.div_ceil(s) * g.in_w.div_ceil(s);
        let groups = self.check_groups(what, [pixels.div_ceil(IG_PIXELS), g.in_c.div_ceil(cb), s * s])?;
        let plan = Plan {
            m: g.in_c,
            n: g.batch * g.in_h * g.in_w,
            k: g.out_c * taps,
            k_chunk: 0,
            slices: 1,
            tile: TileShape::ALL[0],
        };
        self.scoped(what, || {
            let kernel = self.kernel_with("nn/nn_conv2d.wgsl", "conv2d_input_grad", None, &[("IG_CB", cb as u32)])?;
            let params = ConvParams {
                a_off: w.offset as u32,
                b_off: dy.offset as u32,
                c_off: dx.offset as u32,
                cols_per_img: (g.in_h * g.in_w) as u32,
                ..conv_params(g, MODE_INPUT_GRAD, &plan)
            };
            let step = self.step(kernel, &params, &[w.buffer, dy.buffer, dx.buffer, dx.buffer, dx.buffer], groups);
            // The model's multiply-adds, as the forward pass counts them.
            Ok(self.op(format!("conv2d input grad {g:?}"), vec![step], None))
        })
    }

    /// `dw (+)= ` the gradient of `sum(dy * conv2d(x, w))` with respect to w, reduced over the
    /// batch, and `db[oc] (+)= sum of dy[., oc, ., .]`; `accumulate` as in
    /// [`Self::linear_backward_params`].
    pub fn conv2d_backward_params(
        &self,
        g: &ConvGeom,
        x: Slice,
        dy: Slice,
        dw: Slice,
        db: Option<Slice>,
        accumulate: bool,
    ) -> Result<NnOp> {
        let what = "conv2d weight gradient";
        let (oh, ow) = self.check_geom(what, g)?;
        let patch = g.in_c * g.kh * g.kw;
        let plan = self.plan(what, g.out_c, patch, g.batch * oh * ow, true)?;
        self.check_slice("conv2d input", x, g.batch * g.in_c * g.in_h * g.in_w)?;
        self.check_slice("conv2d output gradient", dy, g.batch * g.out_c * oh * ow)?;
        self.check_slice("conv2d weight gradient", dw, g.out_c * patch)?;
        if let Some(db) = db {
            self.check_slice("conv2d bias gradient", db, g.out_c)?;
        }
        self.scoped(what, || {
            let kernel = self.tile_kernel("nn/nn_conv2d.wgsl", "conv2d", None, &plan)?;
            let base = ConvParams {
                a_off: dy.offset as u32,
                b_off: x.offset as u32,
                cols_per_img: patch as u32,
                ..conv_params(g, MODE_WEIGHT_GRAD, &plan)
            };
            self.param_grads_op(
                what,
                format!("conv2d param grads {g:?}"),
                &plan,
                kernel,
                |flags, c_off, split_stride| Box::new(ConvParams { flags, c_off, split_stride, ..base }),
                [x, dy, dw],
                db.map(|db| (db, g.batch, g.out_c, oh * ow)),
                accumulate,
            )
        })
    }

    fn check_geom(&self, what: &str, g: &ConvGeom) -> Result<(usize, usize)> {
        if g.batch == 0 || g.in_c == 0 || g.out_c == 0 || g.kh == 0 || g.kw == 0 || g.stride == 0 {
            return Err(Error::invalid(what, format!("{g:?} has a zero size or stride")));
        }
        if g.in_h + 2 * g.pad < g.kh || g.in_w + 2 * g.pad < g.kw {
            return Err(Error::invalid(what, format!("{g:?}: the kernel is larger than the padded input")));
        }
        Ok((g.out_h(), g.out_w()))
    }
}

fn conv_params(g: &ConvGeom, mode: u32, plan: &Plan) -> ConvParams {
    ConvParams {
        batch: g.batch as u32,
        in_c: g.in_c as u32,
        in_h: g.in_h as u32,
        in_w: g.in_w as u32,
        out_c: g.out_c as u32,
        out_h: g.out_h() as u32,
        out_w: g.out_w() as u32,
        kh: g.kh as u32,
        kw: g.kw as u32,
        stride: g.stride as u32,
        pad: g.pad as u32,
        mode,
        m: plan.m as u32,
        n: plan.n as u32,
        k: plan.k as u32,
        k_chunk: plan.k_chunk as u32,
        ..Default::default()
    }
}
