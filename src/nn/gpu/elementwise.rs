//! Element-wise and reduction kernels (`shaders/nn/nn_elementwise.wgsl`): activations and
//! their jets, bias gradients, average pooling, the residual blocks' sums and copies. CPU
//! twins: src/nn/ops.rs, `Activation::eval` and src/nn/residual.rs.

use super::*;

impl NnKernels {
    /// `a = act(z)` over `len` elements (a may be z itself).
    pub fn activation_forward(&self, act: Activation, z: Slice, a: Slice, len: usize) -> Result<NnOp> {
        self.check_slice("activation input", z, len)?;
        self.check_slice("activation output", a, len)?;
        let p = EwParams { len: len as u32, a_off: z.offset as u32, c_off: a.offset as u32, ..Default::default() };
        self.elementwise("activation forward", "act_forward", Some(act), p, len, [z.buffer, z.buffer, a.buffer])
    }

    /// `dz = da * act'(z)` over `len` elements (dz may be da itself).
    pub fn activation_backward(&self, act: Activation, z: Slice, da: Slice, dz: Slice, len: usize) -> Result<NnOp> {
        self.check_slice("activation input", z, len)?;
        self.check_slice("activation output gradient", da, len)?;
        self.check_slice("activation input gradient", dz, len)?;
        let p = EwParams {
            len: len as u32,
            a_off: z.offset as u32,
            b_off: da.offset as u32,
            c_off: dz.offset as u32,
            ..Default::default()
        };
        self.elementwise("activation backward", "act_backward", Some(act), p, len, [z.buffer, da.buffer, dz.buffer])
    }

    /// The activation's jet of `order` (1 or 2) over blocks of `len` values (z, z', z'' from
    /// `z`'s offset; a, a', a'' from `a`'s), as [`crate::nn::jet`] defines it.
    pub fn activation_jet_forward(
        &self,
        act: Activation,
        z: Slice,
        a: Slice,
        len: usize,
        order: usize,
    ) -> Result<NnOp> {
        self.check_slice("activation jet input", z, (order + 1) * len)?;
        self.check_slice("activation jet output", a, (order + 1) * len)?;
        let p = EwParams {
            len: len as u32,
            a_off: z.offset as u32,
            c_off: a.offset as u32,
            k: order as u32,
            ..Default::default()
        };
        self.elementwise("activation jet", "act_jet_forward", Some(act), p, len, [z.buffer, z.buffer, a.buffer])
    }

    /// The reverse pass of [`Self::activation_jet_forward`]: the adjoints of z, z', z'' (at
    /// `dz`) from those of a, a', a'' (at `da`).
    pub fn activation_jet_backward(
        &self,
        act: Activation,
        z: Slice,
        da: Slice,
        dz: Slice,
        len: usize,
        order: usize,
    ) -> Result<NnOp> {
        for (what, s) in
            [("activation jet input", z), ("activation jet output adjoint", da), ("activation jet input adjoint", dz)]
        {
            self.check_slice(what, s, (order + 1) * len)?;
        }
        let p = EwParams {
            len: len as u32,
            a_off: z.offset as u32,
            b_off: da.offset as u32,
            c_off: dz.offset as u32,
            k: order as u32,
            ..Default::default()
        };
        self.elementwise(
            "activation jet backward",
            "act_jet_backward",
            Some(act),
            p,
            len,
            [z.buffer, da.buffer, dz.buffer],
        )
    }

    /// `db[c] = sum over rows and the `inner` values of channel c of dy[rows, channels, inner]`
    /// (overwrites db): the bias gradient on its own, for passes whose weight gradient sums
    /// over more rows than the bias meets.
    pub fn bias_grad(&self, dy: Slice, db: Slice, rows: usize, channels: usize, inner: usize) -> Result<NnOp> {
        let what = "bias gradient";
        self.check_slice("bias gradient input", dy, rows * channels * inner)?;
        self.check_slice(what, db, channels)?;
        self.scoped(what, || {
            let step = self.bias_grad_step(what, dy, db, rows, channels, inner, false)?;
            Ok(self.op(format!("{what} {rows}x{channels}x{inner}"), vec![step], None))
        })
    }

    /// `c = a + b` over `len` elements, or `c = a` without `b` (c may be a or b itself): the
    /// residual blocks' sums and copies.
    pub fn add_copy(&self, a: Slice, b: Option<Slice>, c: Slice, len: usize) -> Result<NnOp> {
        self.check_slice("sum input", a, len)?;
        if let Some(b) = b {
            self.check_slice("sum input", b, len)?;
        }
        self.check_slice("sum output", c, len)?;
        let p = EwParams {
            len: len as u32,
            a_off: a.offset as u32,
            b_off: b.map_or(0, |b| b.offset) as u32,
            c_off: c.offset as u32,
            accumulate: b.is_some() as u32,
            ..Default::default()
        };
        let what = if b.is_some() { "residual sum" } else { "residual copy" };
        self.elementwise(what, "add_copy", None, p, len, [a.buffer, b.unwrap_or(a).buffer, c.buffer])
    }

    /// `y[plane, h / k, w / k]` = means of k x k windows of `x[plane, h, w]` (stride k).
    pub fn avgpool2d_forward(&self, planes: usize, h: usize, w: usize, k: usize, x: Slice, y: Slice) -> Result<NnOp> {
        self.check_pool("avgpool2d forward", planes, h, w, k)?;
        let len = planes * (h / k) * (w / k);
        self.check_slice("avgpool2d input", x, planes * h * w)?;
        self.check_slice("avgpool2d output", y, len)?;
        let p = pool_params(len, h, w, k, x.offset, y.offset);
        self.elementwise("avgpool2d forward", "avgpool_forward", None, p, len, [x.buffer, x.buffer, y.buffer])
    }

    /// The input gradient of [`Self::avgpool2d_forward`] (overwrites dx; 0 where no window
    /// covers).
    pub fn avgpool2d_backward(
        &self,
        planes: usize,
        h: usize,
        w: usize,
        k: usize,
        dy: Slice,
        dx: Slice,
    ) -> Result<NnOp> {
        self.check_pool("avgpool2d backward", planes, h, w, k)?;
        let len = planes * h * w;
        self.check_slice("avgpool2d output gradient", dy, planes * (h / k) * (w / k))?;
        self.check_slice("avgpool2d input gradient", dx, len)?;
        let p = pool_params(len, h, w, k, dy.offset, dx.offset);
        self.elementwise("avgpool2d backward", "avgpool_backward", None, p, len, [dy.buffer, dy.buffer, dx.buffer])
    }

    fn check_pool(&self, what: &str, planes: usize, h: usize, w: usize, k: usize) -> Result<()> {
        if planes == 0 || k == 0 || h < k || w < k {
            return Err(Error::invalid(
                what,
                format!("{planes} planes of {h}x{w} with window {k}: needs k >= 1 and planes >= 1 no smaller than k"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn elementwise(
        &self,
        what: &str,
        entry: &str,
        act: Option<Activation>,
        p: EwParams,
        len: usize,
        buffers: [&wgpu::Buffer; 3],
    ) -> Result<NnOp> {
        if len == 0 {
            return Err(Error::invalid(what, "no elements"));
        }
        let groups = self.ew_groups(what, len.div_ceil(EW_WG))?;
        self.scoped(what, || {
            let k = self.kernel("nn/nn_elementwise.wgsl", entry, act)?;
            let step = self.step(k, &p, &buffers, groups);
            Ok(self.op(format!("{what} {len}"), vec![step], None))
        })
    }
}

fn pool_params(len: usize, h: usize, w: usize, k: usize, a_off: usize, c_off: usize) -> EwParams {
    EwParams {
        len: len as u32,
        a_off: a_off as u32,
        c_off: c_off as u32,
        h: h as u32,
        w: w as u32,
        k: k as u32,
        ..Default::default()
    }
}
