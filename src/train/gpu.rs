//! The GPU executor of training steps, [`GpuTrainer`]: for MLP-shaped networks (the 2-D toys'
//! models) [`MlpTrainer`], `shaders/train/train.wgsl` plus the generated `train_net` module (sizes,
//! buffer offsets, the forward/backward tape and the parameter-gradient reduction, the network
//! inlined into one invocation per point); for every other network (convolutions, several
//! outputs) [`super::layered::LayeredTrainer`] around the batched layer kernels. Parameters,
//! optimizer moments, replay buffer and metrics stay on the device; `run` records every
//! dispatch of up to [`STEPS_PER_SUBMIT`] steps into one submit and reads back only the
//! metrics rows.

use super::layered::LayeredTrainer;
use super::submit::{STEPS_PER_SUBMIT, SubmitSteps, run_in_submits};
use super::{Loss, METRIC_FLOATS, StepMetrics, StepSettings, TrainConfig, TrainState, Trainer};
use crate::energy::{Energy, EnergyInternals};
use crate::gpu::launch::{ParamSlots, bind_group, check_fits, dispatch, workgroups};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::NetworkInternals;
use crate::nn::mlp::{Loops, MlpView, Places, TILE_CHAINS, TILE_THREADS, emit_pass};
use crate::sampler::config::{MlpStrategy, TILED_MIN_WIDTH};
use crate::{Error, Result};
use std::sync::Arc;

/// `TrainParams` of shaders/train/train.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct TrainParams {
    seed: [u32; 2],
    step: u32,
    data_rows: u32,
    capacity: u32,
    position: u32,
    k_first: u32,
    k_count: u32,
    loss: u32,
    metrics_row: u32,
    optimizer: u32,
    n_chains: u32,
    /// reset_prob .. grad_clamp of the WGSL struct.
    settings: StepSettings,
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        TrainParams,
        "train/train.wgsl",
        "TrainParams",
        [
            seed,
            step,
            data_rows,
            capacity,
            position,
            k_first,
            k_count,
            loss,
            metrics_row,
            optimizer,
            n_chains,
            settings.reset_prob,
            settings.step_size,
            settings.noise_std,
            settings.alpha,
            settings.margin,
            settings.lr,
            settings.bias1,
            settings.bias2,
            settings.beta1,
            settings.beta2,
            settings.eps,
            settings.weight_decay,
            settings.clip_norm,
            settings.grad_clamp
        ]
    )]
}

/// Where things live in the `energy_params` and `work` buffers.
#[derive(Clone, Copy, Debug)]
struct Layout {
    n_mlp: usize,
    n_params: usize,
    tape_stride: usize,
    neg_off: usize,
    w_off: usize,
    e_off: usize,
    flag_off: usize,
    scalar_off: usize,
}

impl Layout {
    fn new(mlp: &MlpView<'_>, batch: usize) -> Self {
        let dims = mlp.dims();
        let n_mlp: usize = mlp.layers().iter().map(|l| l.weight.len() + l.bias.len()).sum();
        // Tape per point: the input of every layer, then act'(z) / dE/dz of every hidden layer.
        let tape_stride = dims[..dims.len() - 1].iter().sum::<usize>() + dims[1..dims.len() - 1].iter().sum::<usize>();
        let neg_off = 2 * batch * tape_stride;
        let w_off = neg_off + batch * mlp.input_dim();
        let e_off = w_off + 2 * batch;
        let flag_off = e_off + 2 * batch;
        let scalar_off = flag_off + batch;
        Self { n_mlp, n_params: n_mlp + 1, tape_stride, neg_off, w_off, e_off, flag_off, scalar_off }
    }

    fn work_len(&self) -> usize {
        self.scalar_off + 4
    }
}

/// The `train_net` WGSL module: constants, `tape_pass(base) -> f32` (forward, storing every
/// layer's input at `work[base..]`, and backward to every hidden layer with unit output weight;
/// returns E) and `param_grad(q) -> f32` (sum over the 2B points of weight * dE/dtheta_q).
fn train_net_module(mlp: &MlpView<'_>, batch: usize, layout: &Layout) -> String {
    let dims = mlp.dims();
    let layers = mlp.layers();
    let hidden = layers.len() - 1;
    let (act, dact) = mlp.activation().wgsl();
    let sign = if mlp.negate() { "-1.0" } else { "1.0" };
    // Parameter offsets and tape offsets (layer input, hidden slope then delta).
    let w_at: Vec<usize> = mlp.param_offsets().iter().map(|&(w, _)| w).collect();
    let in_at: Vec<usize> = (0..layers.len()).map(|k| dims[..k].iter().sum()).collect();
    let h_len: usize = dims[..dims.len() - 1].iter().sum();
    let d_at: Vec<usize> = (0..hidden).map(|k| h_len + dims[1..k + 1].iter().sum::<usize>()).collect();
    let mut s = format!(
        "const BATCH: u32 = {batch}u;\nconst N_MLP: u32 = {n}u;\nconst N_PARAMS: u32 = {np}u;\nconst M_OFF: u32 = {np}u;\n\
         const V_OFF: u32 = {v}u;\nconst G_OFF: u32 = {g}u;\nconst TAPE_STRIDE: u32 = {ts}u;\nconst NEG_OFF: u32 = {no}u;\n\
         const W_OFF: u32 = {wo}u;\nconst E_OFF: u32 = {eo}u;\nconst FLAG_OFF: u32 = {fo}u;\nconst SCALAR_OFF: u32 = {so}u;\n\
         const DRAWS: u32 = {draws}u;\nconst SIGN: f32 = {sign};\n\
         fn tape_act(z: f32) -> f32 {{ return {act}; }}\nfn tape_dact(z: f32) -> f32 {{ return {dact}; }}\n\
         fn tape_pass(base: u32) -> f32 {{\n",
        n = layout.n_mlp,
        np = layout.n_params,
        v = 2 * layout.n_params,
        g = 3 * layout.n_params,
        ts = layout.tape_stride,
        no = layout.neg_off,
        wo = layout.w_off,
        eo = layout.e_off,
        fo = layout.flag_off,
        so = layout.scalar_off,
        draws = mlp.input_dim().div_ceil(4),
    );
    let tape = Tape { in_at: &in_at, d_at: &d_at };
    s += &emit_pass(
        mlp,
        &Loops { places: &tape, act: "tape_act", dact: "tape_dact", sign: "SIGN", input_grad: None },
        false,
    );
    s += "    return SIGN * out;\n}\n\nfn param_grad(q: u32) -> f32 {\n    var acc = 0.0;\n";
    for (k, l) in layers.iter().enumerate() {
        let (w, b, end) = (w_at[k], w_at[k] + l.inputs * l.outputs, w_at[k] + l.inputs * l.outputs + l.outputs);
        let delta = |o: &str| if k == hidden { "SIGN".to_string() } else { format!("work[base + {}u + {o}]", d_at[k]) };
        s += &format!(
            "    if q < {end}u {{\n        if q < {b}u {{\n            let o = (q - {w}u) / {inp}u;\n            let i = (q - {w}u) % {inp}u;\n            \
             for (var s = 0u; s < 2u * BATCH; s++) {{\n                let base = s * TAPE_STRIDE;\n                \
             acc += work[W_OFF + s] * {dz} * work[base + {input}u + i];\n            }}\n        }} else {{\n            let o = q - {b}u;\n            \
             for (var s = 0u; s < 2u * BATCH; s++) {{\n                let base = s * TAPE_STRIDE;\n                acc += work[W_OFF + s] * {dz};\n            }}\n        }}\n        \
             return acc;\n    }}\n",
            inp = l.inputs,
            dz = delta("o"),
            input = in_at[k],
        );
    }
    s += "    return acc;\n}\n";
    s
}

/// The tape of point `base`: every layer's input (the point, then each hidden activation) at
/// `in_at`, each hidden layer's slope, then delta, at `d_at`, so `param_grad` reads them back.
struct Tape<'a> {
    in_at: &'a [usize],
    d_at: &'a [usize],
}

impl Places for Tape<'_> {
    fn param(&self, index: &str) -> String {
        format!("energy_params[{index}]")
    }
    fn point(&self, i: &str) -> String {
        format!("work[base + {}u + {i}]", self.in_at[0])
    }
    fn hidden(&self, k: usize, o: &str) -> String {
        format!("work[base + {}u + {o}]", self.in_at[k + 1])
    }
    fn slope(&self, k: usize, o: &str) -> String {
        format!("work[base + {}u + {o}]", self.d_at[k])
    }
}

/// The assembled training shader for a network and batch size.
pub fn shader_source(mlp: &MlpView<'_>, batch: usize) -> Result<String> {
    let layout = Layout::new(mlp, batch);
    let energy = Energy::from_network(mlp.network().clone()).wgsl_module();
    let net = train_net_module(mlp, batch, &layout);
    crate::gpu::shader::assemble("train/train.wgsl", &[("energy", &energy), ("train_net", &net)])
}

/// The assembled tiled Langevin kernel (shaders/train/train_tiled.wgsl) for a network with a hidden
/// layer and a batch size.
pub fn tiled_shader_source(mlp: &MlpView<'_>, batch: usize) -> Result<String> {
    let layout = Layout::new(mlp, batch);
    let energy = Energy::from_network(mlp.network().clone()).wgsl_module();
    let net = train_net_module(mlp, batch, &layout);
    let tiled = mlp.wgsl_tiled_module();
    crate::gpu::shader::assemble(
        "train/train_tiled.wgsl",
        &[("energy", &energy), ("train_net", &net), ("mlp_net", &tiled.source)],
    )
}

struct Kernels {
    langevin: Arc<Kernel>,
    noise: Arc<Kernel>,
    forward_backward: Arc<Kernel>,
    loss: Arc<Kernel>,
    param_grads: Arc<Kernel>,
    grad_norm: Arc<Kernel>,
    optimizer: Arc<Kernel>,
}

/// The GPU executor: fused kernels for MLP-shaped networks, layer kernels for the others. One
/// lives per training run, so the larger variant's size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum GpuTrainer {
    Mlp(MlpTrainer),
    Layered(LayeredTrainer),
}

impl GpuTrainer {
    /// [`MlpTrainer`] when the network is MLP-shaped ([`crate::nn::NetworkInternals::as_mlp`]), its
    /// Langevin phase per chain or tiled as [`MlpTrainer::with_strategy`] picks; else, and for
    /// the configurations of [`TrainConfig::needs_layer_kernels`], [`LayeredTrainer`].
    pub fn new(ctx: Arc<GpuContext>, config: &TrainConfig, state: TrainState, data: &[f32]) -> Result<Self> {
        Self::with_strategy(ctx, config, state, data, MlpStrategy::Auto)
    }

    /// [`GpuTrainer::new`] for data rows with class labels (JEM; its classifier networks run
    /// through the layer kernels).
    pub fn with_labels(
        ctx: Arc<GpuContext>,
        config: &TrainConfig,
        state: TrainState,
        data: &[f32],
        labels: &[u32],
    ) -> Result<Self> {
        match state.net.as_mlp() {
            Some(_) if !config.needs_layer_kernels() => Self::new(ctx, config, state, data),
            _ => Ok(GpuTrainer::Layered(LayeredTrainer::with_labels(ctx, config, state, data, labels)?)),
        }
    }

    /// [`GpuTrainer::new`] with the MLP trainer's Langevin strategy chosen by the caller (an
    /// error for networks that are not MLPs unless it is `Auto`).
    pub fn with_strategy(
        ctx: Arc<GpuContext>,
        config: &TrainConfig,
        state: TrainState,
        data: &[f32],
        strategy: MlpStrategy,
    ) -> Result<Self> {
        if state.net.as_mlp().is_some() && !config.needs_layer_kernels() {
            Ok(GpuTrainer::Mlp(MlpTrainer::with_strategy(ctx, config, state, data, strategy)?))
        } else if strategy == MlpStrategy::Auto {
            Ok(GpuTrainer::Layered(LayeredTrainer::new(ctx, config, state, data)?))
        } else {
            Err(Error::invalid(
                "mlp strategy",
                format!(
                    "{strategy:?} is for contrastive training of MLP-shaped networks; this run goes through the layer kernels (leave the strategy on auto)"
                ),
            ))
        }
    }

    /// Whether the Langevin phase runs tiled (MLP trainer only).
    pub fn is_tiled(&self) -> bool {
        matches!(self, GpuTrainer::Mlp(t) if t.is_tiled())
    }

    /// Dispatches per training step (for reports).
    pub fn dispatches_per_step(&self) -> u32 {
        match self {
            GpuTrainer::Mlp(t) => t.dispatches_per_step(),
            GpuTrainer::Layered(t) => t.dispatches_per_step(),
        }
    }

    fn inner(&mut self) -> &mut dyn Trainer {
        match self {
            GpuTrainer::Mlp(t) => t,
            GpuTrainer::Layered(t) => t,
        }
    }
}

impl Trainer for GpuTrainer {
    fn run(&mut self, steps: u32) -> Result<Vec<StepMetrics>> {
        self.inner().run(steps)
    }

    fn state(&mut self) -> Result<TrainState> {
        self.inner().state()
    }

    fn executor(&self) -> String {
        match self {
            GpuTrainer::Mlp(t) => t.executor(),
            GpuTrainer::Layered(t) => t.executor(),
        }
    }
}

/// Training steps of an MLP-shaped network with the network inlined into the kernels.
pub struct MlpTrainer {
    ctx: Arc<GpuContext>,
    config: TrainConfig,
    /// The network's architecture (weights live on the device).
    net_shape: crate::nn::Network,
    layout: Layout,
    rows: usize,
    step: u32,
    lr_scale: f32,
    /// Langevin steps per dispatch (the adapter's loop cap).
    langevin_chunk: u32,
    /// Workgroups of the tiled Langevin kernel; None: one invocation per chain.
    tiled_workgroups: Option<u32>,
    kernels: Kernels,
    slots: ParamSlots,
    params: wgpu::Buffer,
    replay: wgpu::Buffer,
    metrics: wgpu::Buffer,
    groups: Vec<wgpu::BindGroup>,
}

impl MlpTrainer {
    /// A trainer of `state`'s network, which must be MLP-shaped, whose Langevin phase evaluates the
    /// network per chain, or tiled (a workgroup per 16 chains, each weight read serving all
    /// 16): `Auto` tiles networks with a hidden layer of at least `TILED_MIN_WIDTH` neurons on
    /// hardware adapters.
    pub fn with_strategy(
        ctx: Arc<GpuContext>,
        config: &TrainConfig,
        state: TrainState,
        data: &[f32],
        strategy: MlpStrategy,
    ) -> Result<Self> {
        if config.needs_layer_kernels() {
            return Err(Error::invalid(
                "training configuration",
                "score matching, a generator or encoder, and InfoNCE run through the layer kernels, not the MLP \
                 trainer: GpuTrainer picks the right one",
            ));
        }
        let d = config.dim();
        let rows = config.data_rows(data)?;
        config.validate(rows)?;
        state.validate(config)?;
        if config.loss == Loss::Jem {
            super::check_jem_network(&state.net)?;
        }
        let mlp = &state
            .net
            .as_mlp()
            .ok_or_else(|| Error::invalid("network", "the MLP trainer needs an MLP-shaped network"))?;
        let layout = Layout::new(mlp, config.batch);
        let b = config.batch;
        check_fits(&ctx, 1, layout.work_len(), "training scratch (tape of 2 x batch points)")?;
        check_fits(&ctx, rows + 4, d, "training data")?;
        check_fits(&ctx, config.buffer_capacity, d, "replay buffer")?;
        check_fits(&ctx, 1, 4 * layout.n_params, "parameters with optimizer moments and gradient")?;
        check_fits(&ctx, layout.n_params.div_ceil(crate::gpu::launch::WG as usize), 1, "parameter workgroups")?;
        check_fits(&ctx, (2 * b).div_ceil(crate::gpu::launch::WG as usize), 1, "batch workgroups")?;
        let hidden_width = mlp.max_hidden_width();
        let tiled = match strategy {
            MlpStrategy::PerChain => None,
            // Software adapters run the tiled kernel slower (BENCHMARKS.md: 0.6 against 0.9 steps/s
            // for 2x128 on lavapipe), so Auto keeps them per chain.
            MlpStrategy::Auto => {
                let software = ctx.adapter_info().is_some_and(|i| i.device_type == wgpu::DeviceType::Cpu);
                (hidden_width >= TILED_MIN_WIDTH && !software).then(|| mlp.wgsl_tiled_module())
            }
            MlpStrategy::Tiled if hidden_width == 0 => {
                return Err(Error::invalid("mlp strategy", "the tiled strategy needs a network with a hidden layer"));
            }
            MlpStrategy::Tiled => Some(mlp.wgsl_tiled_module()),
        };
        // Loop iterations per invocation: a Langevin step evaluates the network once (per chain,
        // or a share of a tile's evaluation); the tape pass once; a parameter-gradient
        // invocation loops over 2B points.
        let per_step = match &tiled {
            Some(net) => net.loop_iterations + 2 * (TILE_CHAINS * d / TILE_THREADS) as u64 + 2,
            None => mlp.loop_iterations() + 2 * d as u64 + 2,
        };
        ctx.check_loop_budget("a training Langevin step", per_step)?;
        ctx.check_loop_budget("the training tape pass", mlp.loop_iterations() + 2 * d as u64)?;
        ctx.check_loop_budget("the parameter-gradient reduction", 2 * b as u64 + 2)?;
        let langevin_chunk = match ctx.loop_budget() {
            Some(budget) => ((budget.saturating_sub(2 * d as u64)) / per_step).clamp(1, u32::MAX as u64) as u32,
            None => config.langevin.steps,
        };
        let wgsl = shader_source(mlp, b)?;
        let k = |entry: &str| ctx.kernel("train/train.wgsl", &wgsl, entry);
        let langevin = match &tiled {
            Some(_) => {
                // The tiled kernel binds a per-chain scratch buffer after the others.
                ctx.kernel("train/train_tiled.wgsl", &tiled_shader_source(mlp, b)?, "negatives_langevin_tiled")?
            }
            None => k("negatives_langevin")?,
        };
        let kernels = Kernels {
            langevin,
            noise: k("negatives_noise")?,
            forward_backward: k("forward_backward")?,
            loss: k("loss_weights")?,
            param_grads: k("param_grads")?,
            grad_norm: k("grad_norm")?,
            optimizer: k("optimizer_step")?,
        };
        let mut packed = state.params();
        packed.extend(&state.m);
        packed.extend(&state.v);
        packed.extend(std::iter::repeat_n(0.0, layout.n_params));
        let mut data_block: Vec<f32> = [&config.box_lo, &config.box_hi, &config.noise_mean, &config.noise_std]
            .iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        data_block.extend_from_slice(data);
        let langevin_dispatches = config.langevin.steps.div_ceil(langevin_chunk) as u64;
        let slots_needed = STEPS_PER_SUBMIT as u64 * (langevin_dispatches + 1);
        let bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
        let (slots, params, replay, metrics, groups) = ctx.scoped("allocating training buffers", || {
            let slots = ParamSlots::new(&ctx, slots_needed);
            let params = ctx.storage_buffer("train params", &bytes(&packed));
            let replay = if state.replay.is_empty() {
                ctx.zeroed_storage_buffer("replay buffer", 4)
            } else {
                ctx.storage_buffer("replay buffer", &bytes(&state.replay))
            };
            let work = ctx.zeroed_storage_buffer("train work", 4 * layout.work_len() as u64);
            let data = ctx.storage_buffer("train data", &bytes(&data_block));
            let metrics =
                ctx.zeroed_storage_buffer("train metrics", (4 * METRIC_FLOATS as u32 * STEPS_PER_SUBMIT) as u64);
            let size = std::mem::size_of::<TrainParams>() as u64;
            let all = [
                &kernels.langevin,
                &kernels.noise,
                &kernels.forward_backward,
                &kernels.loss,
                &kernels.param_grads,
                &kernels.grad_norm,
                &kernels.optimizer,
            ];
            let scratch = tiled
                .as_ref()
                .map(|net| ctx.zeroed_storage_buffer("train tile scratch", (4 * net.scratch_floats * b) as u64));
            let groups = all
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut buffers = vec![&params, &replay, &work, &data, &metrics];
                    if let (0, Some(scratch)) = (i, &scratch) {
                        buffers.push(scratch);
                    }
                    bind_group(&ctx, k, &slots.buffer, size, &buffers)
                })
                .collect();
            (slots, params, replay, metrics, groups)
        })?;
        Ok(Self {
            ctx,
            config: config.clone(),
            net_shape: state.net.clone(),
            layout,
            rows,
            step: state.step,
            lr_scale: state.lr_scale,
            langevin_chunk,
            tiled_workgroups: tiled.map(|_| b.div_ceil(TILE_CHAINS) as u32),
            kernels,
            slots,
            params,
            replay,
            metrics,
            groups,
        })
    }

    fn step_params(&self, step: u32, row: u32) -> TrainParams {
        let c = &self.config;
        let (settings, optimizer) = StepSettings::new(c, step, self.lr_scale);
        TrainParams {
            seed: crate::rng::key(c.seed),
            step,
            data_rows: self.rows as u32,
            capacity: c.buffer_capacity as u32,
            position: c.replay_position(step) as u32,
            loss: c.loss.code(),
            metrics_row: row,
            optimizer,
            n_chains: c.batch as u32,
            settings,
            ..Default::default()
        }
    }

    /// Records steps `self.step .. self.step + n` (n <= STEPS_PER_SUBMIT), metrics in rows 0..n.
    fn submit(&mut self, n: u32) -> Result<()> {
        let b = self.config.batch as u32;
        let per_step: Vec<TrainParams> = (0..n).map(|r| self.step_params(self.step + r, r)).collect();
        let Self { ctx, config, layout, langevin_chunk, tiled_workgroups, kernels: k, slots, groups: g, .. } = self;
        let replay = config.loss.samples_negatives();
        let k_total = config.langevin.steps;
        ctx.submit_pass("training steps", |pass| {
            for base in per_step {
                if replay {
                    let mut k_first = 0;
                    while k_first < k_total {
                        let k_count = (*langevin_chunk).min(k_total - k_first);
                        let off = slots.push(&TrainParams { k_first, k_count, ..base });
                        match tiled_workgroups {
                            Some(n) => workgroups(pass, &k.langevin, &g[0], off, *n),
                            None => dispatch(pass, &k.langevin, &g[0], off, b, 1),
                        }
                        k_first += k_count;
                    }
                }
                let off = slots.push(&base);
                if !replay {
                    dispatch(pass, &k.noise, &g[1], off, b, 1);
                }
                dispatch(pass, &k.forward_backward, &g[2], off, 2 * b, 1);
                workgroups(pass, &k.loss, &g[3], off, 1);
                dispatch(pass, &k.param_grads, &g[4], off, layout.n_mlp as u32, 1);
                workgroups(pass, &k.grad_norm, &g[5], off, 1);
                dispatch(pass, &k.optimizer, &g[6], off, layout.n_params as u32, 1);
            }
            slots.flush(ctx);
        })?;
        self.step += n;
        Ok(())
    }

    /// Whether the Langevin phase runs tiled.
    pub fn is_tiled(&self) -> bool {
        self.tiled_workgroups.is_some()
    }

    /// Dispatches per training step (for reports).
    pub fn dispatches_per_step(&self) -> u32 {
        if self.config.loss.samples_negatives() {
            self.config.langevin.steps.div_ceil(self.langevin_chunk) + 5
        } else {
            6
        }
    }
}

impl SubmitSteps for MlpTrainer {
    fn steps_done(&self) -> u32 {
        self.step
    }

    fn submit(&mut self, n: u32) -> Result<()> {
        MlpTrainer::submit(self, n)
    }

    fn metrics(&self) -> (&GpuContext, &wgpu::Buffer) {
        (&self.ctx, &self.metrics)
    }
}

impl Trainer for MlpTrainer {
    fn run(&mut self, steps: u32) -> Result<Vec<StepMetrics>> {
        run_in_submits(self, steps)
    }

    fn state(&mut self) -> Result<TrainState> {
        let np = self.layout.n_params as u64;
        let replay_bytes = 4 * self.config.replay_len() as u64;
        let parts = self.ctx.read_buffers(&[(&self.params, 4 * 3 * np), (&self.replay, replay_bytes)])?;
        let packed: Vec<f32> = bytemuck::pod_collect_to_vec(&parts[0]);
        let np = np as usize;
        let mut state = TrainState {
            net: self.net_shape.clone(),
            log_z: 0.0,
            m: packed[np..2 * np].to_vec(),
            v: packed[2 * np..3 * np].to_vec(),
            replay: bytemuck::pod_collect_to_vec(&parts[1]),
            step: self.step,
            lr_scale: self.lr_scale,
            side: None,
        };
        state.set_params(&packed[..np])?;
        Ok(state)
    }

    fn executor(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }
}
