//! The launcher of the batched layer kernels: a tiled GEMM for dense layers
//! (`shaders/nn/nn_gemm.wgsl`, launched from gpu/gemm.rs), implicit-GEMM convolution
//! (`shaders/nn/nn_conv2d.wgsl`, gpu/conv2d.rs) and the element-wise kernels
//! (`shaders/nn/nn_elementwise.wgsl`, gpu/elementwise.rs: activations, average pooling, bias
//! gradients, split-K sums). This file holds what they share: operands, prepared ops, the GEMM
//! tiling plan and the checks. CPU twins: [`super::ops`] and `Activation::eval`.
//!
//! Each method checks shapes, offsets and device limits and returns a prepared [`NnOp`]: its
//! pipelines, bind groups and uniform parameters are made once, so the op can be recorded into
//! any number of compute passes (every training step) without new allocations. Operands are
//! [`Slice`]s, a buffer plus an element offset, so many layers' tensors can live in one buffer;
//! the kernels bind every storage buffer read-write, which lets one buffer hold an op's input
//! and output at once (wgpu forbids read-only and read-write uses of one buffer in a dispatch).
//! Ops that overlap in memory are ordered by the barriers wgpu puts between dispatches.

mod conv2d;
mod elementwise;
mod gemm;

use super::ops::ConvGeom;
use crate::gpu::launch::{ParamSlots, bind_group};
use crate::gpu::shader::assemble;
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::Activation;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Outputs per tile of the GEMM core (`shaders/common/nn_tile.wgsl`): 256 threads x 4 x 4.
const TILE_AREA: usize = 4096;
/// Width of the element-wise and reduction workgroups.
const EW_WG: usize = 256;
/// K steps one GEMM workgroup runs at most before the launcher splits K: bounds the loop
/// count per invocation (llvmpipe's cap) and the work per workgroup.
const MAX_K_TILES_PER_SLICE: usize = 256;
/// Workgroups a weight-gradient GEMM aims for by splitting K when M x N is small.
const TARGET_WORKGROUPS: usize = 64;
/// Fewest K steps per split slice (below that the partial sums cost more than they save).
const MIN_K_TILES_PER_SLICE: usize = 8;

// Epilogue flags of shaders/common/nn_tile.wgsl.
const EPI_BIAS_COL: u32 = 1;
const EPI_BIAS_ROW: u32 = 2;
const EPI_ACCUM: u32 = 4;
const EPI_STORE_Z: u32 = 8;
const EPI_ACT: u32 = 16;
const EPI_PARTIAL: u32 = 32;

/// Input-gradient kernel (`conv2d_input_grad`): threads per workgroup, input pixels per
/// workgroup (4 per thread), weights staged per chunk of output channels, most input channels
/// per thread.
const IG_WG: usize = 64;
const IG_PIXELS: usize = 4 * IG_WG;
const IG_WLEN: usize = 2048;
const IG_MAX_CB: usize = 16;

const MODE_FORWARD: u32 = 0;
const MODE_INPUT_GRAD: u32 = 1;
const MODE_WEIGHT_GRAD: u32 = 2;

/// `f32` elements of a storage buffer from `offset` on.
#[derive(Clone, Copy, Debug)]
pub struct Slice<'a> {
    pub buffer: &'a wgpu::Buffer,
    /// In elements (f32), not bytes.
    pub offset: usize,
}

impl<'a> Slice<'a> {
    pub fn new(buffer: &'a wgpu::Buffer, offset: usize) -> Self {
        Self { buffer, offset }
    }
    /// The buffer from its start.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Self { buffer, offset: 0 }
    }
    /// The same buffer, `by` elements further on.
    pub fn advanced(self, by: usize) -> Self {
        Self { buffer: self.buffer, offset: self.offset + by }
    }
}

/// What a forward GEMM or convolution does to its result before storing it:
/// `pre_act = result + bias` (stored if `pre_act` is given, for the backward pass), then
/// `output = act(pre_act)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<Slice<'a>>,
    pub act: Option<Activation>,
    pub pre_act: Option<Slice<'a>>,
}

struct Step {
    kernel: Arc<Kernel>,
    bind: wgpu::BindGroup,
    /// Owns the uniform buffer the bind group reads.
    _params: ParamSlots,
    groups: [u32; 3],
}

/// A prepared layer operation: one or more dispatches, recorded with [`NnOp::record`].
pub struct NnOp {
    label: String,
    steps: Vec<Step>,
    /// Split-K partial sums (weight gradients over long batches).
    _scratch: Option<wgpu::Buffer>,
}

impl NnOp {
    /// Records the op's dispatches into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        // Named for GPU debuggers and profilers (RenderDoc, Nsight), which group dispatches by it.
        pass.push_debug_group(&self.label);
        for s in &self.steps {
            crate::gpu::launch::record(pass, &s.kernel, &s.bind, Some(0), s.groups);
        }
        pass.pop_debug_group();
    }

    pub fn dispatches(&self) -> usize {
        self.steps.len()
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    z_off: u32,
    bias_off: u32,
    flags: u32,
    split_stride: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvParams {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    mode: u32,
    m: u32,
    n: u32,
    k: u32,
    k_chunk: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    z_off: u32,
    bias_off: u32,
    flags: u32,
    split_stride: u32,
    cols_per_img: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct EwParams {
    len: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    h: u32,
    w: u32,
    k: u32,
    accumulate: u32,
    rows: u32,
    channels: u32,
    inner: u32,
    parts: u32,
    part_stride: u32,
    _pad: [u32; 3],
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![
        mirror!(
            GemmParams,
            "nn/nn_gemm.wgsl",
            "GemmParams",
            [m, n, k, k_chunk, a_off, a_rs, a_cs, b_off, b_rs, b_cs, c_off, z_off, bias_off, flags, split_stride]
        ),
        mirror!(
            ConvParams,
            "nn/nn_conv2d.wgsl",
            "ConvParams",
            [
                batch,
                in_c,
                in_h,
                in_w,
                out_c,
                out_h,
                out_w,
                kh,
                kw,
                stride,
                pad,
                mode,
                m,
                n,
                k,
                k_chunk,
                a_off,
                b_off,
                c_off,
                z_off,
                bias_off,
                flags,
                split_stride,
                cols_per_img
            ]
        ),
        mirror!(
            EwParams,
            "nn/nn_elementwise.wgsl",
            "EwParams",
            [len, a_off, b_off, c_off, h, w, k, accumulate, rows, channels, inner, parts, part_stride]
        ),
    ]
}

/// The tile shape of one GEMM (the core's TILE_M x TILE_N = 4096 outputs, TILE_K deep).
#[derive(Clone, Copy, Debug, PartialEq)]
struct TileShape {
    m: usize,
    n: usize,
    k: usize,
}

impl TileShape {
    /// The shapes the core can be specialised to: 64 x 64, and skewed ones for GEMMs with a
    /// small side (16 x 256 and 256 x 16 stage only 8 deep, to fit 16 KiB of workgroup memory).
    const ALL: [TileShape; 5] = [
        TileShape { m: 64, n: 64, k: 16 },
        TileShape { m: 32, n: 128, k: 16 },
        TileShape { m: 128, n: 32, k: 16 },
        TileShape { m: 16, n: 256, k: 8 },
        TileShape { m: 256, n: 16, k: 8 },
    ];

    /// The shape with the least padded work for an m x n output, weighing each tile by its
    /// staging traffic per output ((tm + tn) elements per K step against 128 for 64 x 64), so a
    /// skewed tile is taken only where it saves real work: 16 rows (conv1's out_c) get 16 x 256
    /// (cost 1.56 per useful output instead of 4), 32 rows 32 x 128, 48 or more stay 64 x 64.
    fn choose(m: usize, n: usize) -> TileShape {
        let cost =
            |t: &TileShape| (m.div_ceil(t.m) * t.m * n.div_ceil(t.n) * t.n) as f64 * (t.m + t.n + 128) as f64 / 256.0;
        *Self::ALL.iter().min_by(|a, b| cost(a).total_cmp(&cost(b))).expect("shapes")
    }
}

/// A GEMM as the tiled core sees it: sizes, tile shape, which slice of K each z workgroup
/// takes.
struct Plan {
    m: usize,
    n: usize,
    k: usize,
    k_chunk: usize,
    slices: usize,
    tile: TileShape,
}

/// Records the layer kernels; see the module docs.
pub struct NnKernels {
    ctx: Arc<GpuContext>,
}

fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Limit(format!("{what}: {v} does not fit the kernels' 32-bit indices")))
}

impl NnKernels {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        Self { ctx }
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The kernel `entry` of `file`, with `act` as its `nn_act` (identity when None).
    fn kernel(&self, file: &str, entry: &str, act: Option<Activation>) -> Result<Arc<Kernel>> {
        self.kernel_with(file, entry, act, &[])
    }

    /// [`Self::kernel`] with module constants specialised: each `(NAME, value)` replaces the
    /// line `const NAME: u32 = ...;` of the source (which must have one).
    fn kernel_with(
        &self,
        file: &str,
        entry: &str,
        act: Option<Activation>,
        consts: &[(&str, u32)],
    ) -> Result<Arc<Kernel>> {
        let module;
        let mut virtual_modules = Vec::new();
        if let Some(act) = act {
            let (f, df) = act.wgsl();
            let jet = act.wgsl_jet();
            module = format!(
                "#import common/activations.wgsl\nfn nn_act(z: f32) -> f32 {{ return {f}; }}\nfn nn_act_grad(z: f32) -> f32 {{ return {df}; }}\n\
                 fn nn_act_jet(z: f32) -> vec4<f32> {{ return {jet}; }}\n"
            );
            virtual_modules.push(("common/nn_act.wgsl", module.as_str()));
        }
        let mut wgsl = assemble(file, &virtual_modules)?;
        for (name, value) in consts {
            wgsl = specialise(&wgsl, name, *value)
                .ok_or_else(|| Error::invalid(file, format!("no `const {name}: u32` line to specialise")))?;
        }
        self.ctx.kernel(file, &wgsl, entry)
    }

    /// A kernel on the GEMM core, specialised to the plan's tile shape.
    fn tile_kernel(&self, file: &str, entry: &str, act: Option<Activation>, plan: &Plan) -> Result<Arc<Kernel>> {
        debug_assert_eq!(plan.tile.m * plan.tile.n, TILE_AREA);
        self.kernel_with(file, entry, act, &[("TILE_M", plan.tile.m as u32), ("TILE_K", plan.tile.k as u32)])
    }

    /// Checks that `len` elements from the slice's offset lie in its buffer and that the buffer
    /// fits one storage binding (the kernels bind whole buffers).
    fn check_slice(&self, what: &str, s: Slice, len: usize) -> Result<()> {
        let size = s.buffer.size();
        let end = s.offset as u64 + len as u64;
        if end * 4 > size {
            return Err(Error::invalid(
                what,
                format!("needs elements {}..{end} but its buffer holds {} f32", s.offset, size / 4),
            ));
        }
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        if size > limit {
            return Err(Error::Limit(format!(
                "{what}: a {size}-byte buffer exceeds the {limit}-byte storage binding limit"
            )));
        }
        u32_of(what, end as usize)?;
        Ok(())
    }

    fn check_groups(&self, what: &str, groups: [usize; 3]) -> Result<[u32; 3]> {
        let max = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        if let Some(g) = groups.iter().find(|&&g| g > max) {
            return Err(Error::Limit(format!("{what} needs {g} workgroups in one dimension; the device allows {max}")));
        }
        Ok(groups.map(|g| g as u32))
    }

    /// Splits K only where allowed (`split`), to respect the loop cap and to give small M x N
    /// outputs enough workgroups.
    fn plan(&self, what: &str, m: usize, n: usize, k: usize, split: bool) -> Result<Plan> {
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::invalid(what, format!("empty GEMM ({m} x {n}, K = {k})")));
        }
        let tile = TileShape::choose(m, n);
        let k_tiles = k.div_ceil(tile.k);
        let tiles_mn = m.div_ceil(tile.m) * n.div_ceil(tile.n);
        let slices = if split {
            let for_loops = k_tiles.div_ceil(MAX_K_TILES_PER_SLICE);
            let for_width = TARGET_WORKGROUPS.div_ceil(tiles_mn).min((k_tiles / MIN_K_TILES_PER_SLICE).max(1));
            for_loops.max(for_width)
        } else {
            1
        };
        let k_chunk = k_tiles.div_ceil(slices) * tile.k;
        let slices = k.div_ceil(k_chunk);
        // One K step runs the staging loops and TILE_K + 1 iterations, the epilogue 20.
        let per_step = (tile.k * tile.m).div_ceil(256) + (tile.k * tile.n).div_ceil(256) + tile.k + 1;
        self.ctx.check_loop_budget(what, (k_chunk / tile.k * per_step + 20) as u64)?;
        Ok(Plan { m, n, k, k_chunk, slices, tile })
    }

    fn step(
        &self,
        kernel: Arc<Kernel>,
        params: &impl bytemuck::Pod,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Step {
        let mut slots = ParamSlots::new(&self.ctx, 1);
        slots.push(params);
        slots.flush(&self.ctx);
        let bind = bind_group(&self.ctx, &kernel, &slots.buffer, size_of_val(params) as u64, buffers);
        Step { kernel, bind, _params: slots, groups }
    }

    /// A zeroed scratch buffer for `slices` partial [m, n] products, or None without a split.
    fn scratch(&self, what: &str, plan: &Plan) -> Result<Option<wgpu::Buffer>> {
        if plan.slices == 1 {
            return Ok(None);
        }
        let elems = plan.slices * plan.m * plan.n;
        let bytes = elems as u64 * 4;
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::Limit(format!(
                "{what}: {} split-K partial products need {bytes} bytes, over the {limit}-byte binding limit",
                plan.slices
            )));
        }
        u32_of(what, elems)?;
        Ok(Some(self.ctx.zeroed_storage_buffer("nn split-K partials", bytes)))
    }

    /// Grid of an element-wise kernel over `len` elements (or workgroups, for per-channel
    /// reductions): x up to the per-dimension limit, then rows of y.
    fn ew_groups(&self, what: &str, groups: usize) -> Result<[u32; 3]> {
        let max = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        let x = groups.clamp(1, max);
        self.check_groups(what, [x, groups.div_ceil(x).max(1), 1])
    }

    /// The sum of split partials into `out` (overwriting or accumulating).
    fn reduce_step(
        &self,
        what: &str,
        scratch: &wgpu::Buffer,
        plan: &Plan,
        out: Slice,
        accumulate: bool,
    ) -> Result<Step> {
        let len = plan.m * plan.n;
        let k = self.kernel("nn/nn_elementwise.wgsl", "reduce_parts", None)?;
        let p = EwParams {
            len: len as u32,
            c_off: out.offset as u32,
            accumulate: accumulate as u32,
            parts: plan.slices as u32,
            part_stride: len as u32,
            ..Default::default()
        };
        let groups = self.ew_groups(what, len.div_ceil(EW_WG))?;
        Ok(self.step(k, &p, &[scratch, scratch, out.buffer], groups))
    }

    /// The GEMM steps of one op: the tiled kernel (writing partials when split) and, when
    /// split, the reduction into C.
    #[allow(clippy::too_many_arguments)]
    fn gemm_steps(
        &self,
        what: &str,
        plan: &Plan,
        kernel: Arc<Kernel>,
        mut params: impl FnMut(u32, u32, u32) -> Box<dyn TileParams>,
        buffers: [&wgpu::Buffer; 5],
        c: Slice,
        accumulate: bool,
    ) -> Result<(Vec<Step>, Option<wgpu::Buffer>)> {
        let groups =
            self.check_groups(what, [plan.n.div_ceil(plan.tile.n), plan.m.div_ceil(plan.tile.m), plan.slices])?;
        let scratch = self.scratch(what, plan)?;
        let mut steps = Vec::new();
        match &scratch {
            None => {
                let p = params(0, c.offset as u32, 0);
                steps.push(p.step(self, kernel, &buffers, groups));
            }
            Some(s) => {
                let mut bufs = buffers;
                bufs[2] = s;
                let p = params(EPI_PARTIAL, 0, (plan.m * plan.n) as u32);
                steps.push(p.step(self, kernel, &bufs, groups));
                steps.push(self.reduce_step(what, s, plan, c, accumulate)?);
            }
        }
        Ok((steps, scratch))
    }

    /// The parameter gradients of a linear or convolutional layer as one op: the weight-gradient
    /// GEMM `dw (+)= dy^T x` (split over K where that helps), its kernel parameters from
    /// `params(flags, c_off, split_stride)`, then with `bias = Some((db, rows, channels,
    /// inner))` the bias gradient. `accumulate` adds to dw and db instead of overwriting them.
    #[allow(clippy::too_many_arguments)]
    fn param_grads_op(
        &self,
        what: &str,
        label: String,
        plan: &Plan,
        kernel: Arc<Kernel>,
        params: impl Fn(u32, u32, u32) -> Box<dyn TileParams>,
        [x, dy, dw]: [Slice; 3],
        bias: Option<(Slice, usize, usize, usize)>,
        accumulate: bool,
    ) -> Result<NnOp> {
        let accum = if accumulate { EPI_ACCUM } else { 0 };
        let flags = |extra| if extra == EPI_PARTIAL { extra } else { accum };
        let (mut steps, scratch) = self.gemm_steps(
            what,
            plan,
            kernel,
            |extra, c_off, split_stride| params(flags(extra), c_off, split_stride),
            [dy.buffer, x.buffer, dw.buffer, dw.buffer, dw.buffer],
            dw,
            accumulate,
        )?;
        if let Some((db, rows, channels, inner)) = bias {
            steps.push(self.bias_grad_step(what, dy, db, rows, channels, inner, accumulate)?);
        }
        Ok(self.op(label, steps, scratch))
    }

    fn op(&self, label: String, steps: Vec<Step>, scratch: Option<wgpu::Buffer>) -> NnOp {
        NnOp { label, steps, _scratch: scratch }
    }

    /// Runs `f` (creating bind groups and buffers) inside the context's error scopes.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.ctx.scoped(&format!("preparing {what}"), f)?
    }

    /// Records `repetitions` runs of `ops` (in order) into one compute pass of one submit.
    pub fn submit(&self, ops: &[&NnOp], repetitions: usize) -> Result<()> {
        self.ctx.submit_pass("layer kernels", |pass| {
            for _ in 0..repetitions {
                for op in ops {
                    op.record(pass);
                }
            }
        })
    }

    /// Wall time of `repetitions` runs of `ops` in one submit, waited for (run once first to
    /// warm up).
    pub fn time(&self, ops: &[&NnOp], repetitions: usize) -> Result<Duration> {
        self.submit(ops, 1)?;
        self.ctx.wait()?;
        let start = Instant::now();
        self.submit(ops, repetitions)?;
        self.ctx.wait()?;
        Ok(start.elapsed())
    }

    /// Flags and the (bias, pre-activation) slices of a forward epilogue; absent ones point at
    /// the output (bound but never read or written).
    fn epilogue<'a>(
        &self,
        what: &str,
        epi: Epilogue<'a>,
        bias_len: usize,
        out_len: usize,
        bias_flag: u32,
        out: Slice<'a>,
    ) -> Result<(u32, Slice<'a>, Slice<'a>)> {
        let mut flags = 0;
        let bias = match epi.bias {
            Some(b) => {
                self.check_slice(&format!("{what} bias"), b, bias_len)?;
                flags |= bias_flag;
                b
            }
            None => out,
        };
        let z = match epi.pre_act {
            Some(z) => {
                self.check_slice(&format!("{what} pre-activation"), z, out_len)?;
                flags |= EPI_STORE_Z;
                z
            }
            None => out,
        };
        if epi.act.is_some() {
            flags |= EPI_ACT;
        }
        Ok((flags, bias, z))
    }

    #[allow(clippy::too_many_arguments)]
    fn bias_grad_step(
        &self,
        what: &str,
        dy: Slice,
        db: Slice,
        rows: usize,
        channels: usize,
        inner: usize,
        accumulate: bool,
    ) -> Result<Step> {
        self.ctx.check_loop_budget(what, (rows * inner).div_ceil(EW_WG) as u64 + 8)?;
        let k = self.kernel("nn/nn_elementwise.wgsl", "bias_grad", None)?;
        let p = EwParams {
            a_off: dy.offset as u32,
            c_off: db.offset as u32,
            accumulate: accumulate as u32,
            rows: rows as u32,
            channels: channels as u32,
            inner: inner as u32,
            ..Default::default()
        };
        let groups = self.ew_groups(what, channels)?;
        Ok(self.step(k, &p, &[dy.buffer, dy.buffer, db.buffer], groups))
    }
}

/// `wgsl` with its line `const NAME: u32 = ...;` set to `value`, or None without one.
fn specialise(wgsl: &str, name: &str, value: u32) -> Option<String> {
    let start = wgsl.find(&format!("const {name}: u32 = "))?;
    let end = start + wgsl[start..].find(';')?;
    Some(format!("{}const {name}: u32 = {value}u{}", &wgsl[..start], &wgsl[end..]))
}

/// A params struct of the GEMM kernels, boxed so one helper serves GemmParams and ConvParams.
trait TileParams {
    fn step(&self, nn: &NnKernels, kernel: Arc<Kernel>, buffers: &[&wgpu::Buffer], groups: [u32; 3]) -> Step;
}

impl<T: bytemuck::Pod> TileParams for T {
    fn step(&self, nn: &NnKernels, kernel: Arc<Kernel>, buffers: &[&wgpu::Buffer], groups: [u32; 3]) -> Step {
        nn.step(kernel, self, buffers, groups)
    }
}
