//! Dense layers on the tiled GEMM core (`shaders/nn/nn_gemm.wgsl`): forward with a fused
//! bias and activation epilogue, input gradients, and weight and bias gradients (split over K
//! when the output is small). CPU twins: `linear_*` in src/nn/ops.rs.

use super::*;

impl NnKernels {
    /// `y[n, out] = act(x[n, in] W[out, in]^T + b)`, W in PyTorch's layout.
    #[allow(clippy::too_many_arguments)]
    pub fn linear_forward(
        &self,
        x: Slice,
        w: Slice,
        y: Slice,
        n: usize,
        inputs: usize,
        outputs: usize,
        epi: Epilogue,
    ) -> Result<NnOp> {
        let what = "linear forward";
        let plan = self.plan(what, n, outputs, inputs, false)?;
        self.check_slice("linear forward input", x, n * inputs)?;
        self.check_slice("linear weight", w, outputs * inputs)?;
        self.check_slice("linear forward output", y, n * outputs)?;
        let (flags, bias, z) = self.epilogue(what, epi, outputs, n * outputs, EPI_BIAS_COL, y)?;
        self.scoped(what, || {
            let kernel = self.tile_kernel("nn/nn_gemm.wgsl", "gemm", epi.act, &plan)?;
            let base = GemmParams {
                m: n as u32,
                n: outputs as u32,
                k: inputs as u32,
                k_chunk: plan.k_chunk as u32,
                a_off: x.offset as u32,
                a_rs: inputs as u32,
                a_cs: 1,
                b_off: w.offset as u32,
                b_rs: 1,
                b_cs: inputs as u32,
                z_off: z.offset as u32,
                bias_off: bias.offset as u32,
                flags,
                ..Default::default()
            };
            let (steps, scratch) = self.gemm_steps(
                what,
                &plan,
                kernel,
                |extra, c_off, split_stride| {
                    Box::new(GemmParams { flags: base.flags | extra, c_off, split_stride, ..base })
                },
                [x.buffer, w.buffer, y.buffer, bias.buffer, z.buffer],
                y,
                false,
            )?;
            Ok(self.op(format!("linear {n}x{inputs} -> {outputs}"), steps, scratch))
        })
    }

    /// `dx[n, in] = dy[n, out] W[out, in]` (overwrites dx).
    pub fn linear_backward_input(
        &self,
        dy: Slice,
        w: Slice,
        dx: Slice,
        n: usize,
        inputs: usize,
        outputs: usize,
    ) -> Result<NnOp> {
        let what = "linear input gradient";
        let plan = self.plan(what, n, inputs, outputs, false)?;
        self.check_slice("linear output gradient", dy, n * outputs)?;
        self.check_slice("linear weight", w, outputs * inputs)?;
        self.check_slice("linear input gradient", dx, n * inputs)?;
        self.scoped(what, || {
            let kernel = self.tile_kernel("nn/nn_gemm.wgsl", "gemm", None, &plan)?;
            let base = GemmParams {
                m: n as u32,
                n: inputs as u32,
                k: outputs as u32,
                k_chunk: plan.k_chunk as u32,
                a_off: dy.offset as u32,
                a_rs: outputs as u32,
                a_cs: 1,
                b_off: w.offset as u32,
                b_rs: inputs as u32,
                b_cs: 1,
                ..Default::default()
            };
            let (steps, scratch) = self.gemm_steps(
                what,
                &plan,
                kernel,
                |extra, c_off, split_stride| Box::new(GemmParams { flags: extra, c_off, split_stride, ..base }),
                [dy.buffer, w.buffer, dx.buffer, dx.buffer, dx.buffer],
                dx,
                false,
            )?;
            Ok(self.op(format!("linear input grad {n}x{outputs} -> {inputs}"), steps, scratch))
        })
    }

    /// `dw[out, in] (+)= dy[n, out]^T x[n, in]` and `db[out] (+)= sum_n dy[n, out]`; with
    /// `accumulate` (the CPU twin's behaviour) the sums are added to dw and db, else they
    /// overwrite them. Long batches are split over K into partial products, summed in a second
    /// dispatch in a fixed order.
    #[allow(clippy::too_many_arguments)]
    pub fn linear_backward_params(
        &self,
        x: Slice,
        dy: Slice,
        dw: Slice,
        db: Option<Slice>,
        n: usize,
        inputs: usize,
        outputs: usize,
        accumulate: bool,
    ) -> Result<NnOp> {
        let what = "linear weight gradient";
        let plan = self.plan(what, outputs, inputs, n, true)?;
        self.check_slice("linear forward input", x, n * inputs)?;
        self.check_slice("linear output gradient", dy, n * outputs)?;
        self.check_slice("linear weight gradient", dw, outputs * inputs)?;
        if let Some(db) = db {
            self.check_slice("linear bias gradient", db, outputs)?;
        }
        self.scoped(what, || {
            let kernel = self.tile_kernel("nn/nn_gemm.wgsl", "gemm", None, &plan)?;
            let base = GemmParams {
                m: outputs as u32,
                n: inputs as u32,
                k: n as u32,
                k_chunk: plan.k_chunk as u32,
                a_off: dy.offset as u32,
                a_rs: 1,
                a_cs: outputs as u32,
                b_off: x.offset as u32,
                b_rs: inputs as u32,
                b_cs: 1,
                ..Default::default()
            };
            self.param_grads_op(
                what,
                format!("linear param grads {n}x{outputs}, {inputs}"),
                &plan,
                kernel,
                |flags, c_off, split_stride| Box::new(GemmParams { flags, c_off, split_stride, ..base }),
                [x, dy, dw],
                db.map(|db| (db, n, outputs, 1)),
                accumulate,
            )
        })
    }
}
