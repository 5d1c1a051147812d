//! GPU launcher for the MCMC kernels (`shaders/sampler/langevin.wgsl`, `hmc.wgsl`, `rwmh.wgsl`) and the
//! parallel-tempering swaps (`tempering.wgsl`). CPU twin: [`super::cpu::CpuSampler`].
//!
//! Chains are split into groups that fit one dispatch and one storage binding (a whole number
//! of tempering replica sets each); each group owns its buffers. A dispatch advances a group by
//! several steps; a submit holds up to `DISPATCHES_PER_SUBMIT` of them, whose parameters sit in
//! 256-byte slots of a uniform buffer selected by dynamic offset. Nothing is read back until the
//! caller asks.

use super::config::{MlpStrategy, SamplerConfig, SamplerKind, TILED_MIN_WIDTH, check_initial, segments};
use super::{ChainSampler, ChainStats};
use crate::energy::image::ImageOptions;
use crate::energy::{Energy, EnergyInternals};
use crate::gpu::launch::{self, ParamSlots, split};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::nn::NetworkInternals;
use crate::nn::mlp::{TILE_CHAINS, TiledNet};
use crate::{Error, Result};
use std::sync::Arc;

/// Step dispatches per submit (bounded so a single submit stays short on a desktop GPU).
const DISPATCHES_PER_SUBMIT: usize = 16;
/// Mirrors `StepParams` in shaders/common/chain.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StepParams {
    n_chains: u32,
    chain_offset: u32,
    step_base: u32,
    n_steps: u32,
    seed: [u32; 2],
    noise_scale: f32,
    grad_clamp: f32,
    box_lo: f32,
    box_hi: f32,
    use_box: u32,
    leapfrog: u32,
    leapfrog_jitter: u32,
    step_jitter: f32,
    trace_every: u32,
    trace_slots: u32,
    trace_start: u32,
    _pad: u32,
}

/// Mirrors `SwapParams` in shaders/sampler/tempering.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SwapParams {
    n_base: u32,
    replicas: u32,
    round: u32,
    parity: u32,
    seed: [u32; 2],
    base_offset: u32,
    dim: u32,
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![
        mirror!(
            StepParams,
            "sampler/langevin.wgsl",
            "StepParams",
            [
                n_chains,
                chain_offset,
                step_base,
                n_steps,
                seed,
                noise_scale,
                grad_clamp,
                box_lo,
                box_hi,
                use_box,
                leapfrog,
                leapfrog_jitter,
                step_jitter,
                trace_every,
                trace_slots,
                trace_start
            ]
        ),
        mirror!(
            SwapParams,
            "sampler/tempering.wgsl",
            "SwapParams",
            [n_base, replicas, round, parity, seed, base_offset, dim]
        ),
    ]
}

struct ChainGroup {
    chains: u32,
    /// Index of the group's first sampler chain.
    first: u32,
    state: wgpu::Buffer,
    stats: wgpu::Buffer,
    energies: wgpu::Buffer,
    trace: wgpu::Buffer,
    chain_params: wgpu::Buffer,
    swaps: wgpu::Buffer,
    step_slots: ParamSlots,
    swap_slots: ParamSlots,
    /// Tiled MLP kernels only: per-chain activations and proposals.
    _scratch: Option<wgpu::Buffer>,
    step_bindings: wgpu::BindGroup,
    swap_bindings: Option<wgpu::BindGroup>,
}

/// One dispatch of the plan: `n` steps from global step `first`, then maybe a swap round.
#[derive(Clone, Copy, Debug)]
struct Piece {
    first: u32,
    n: u32,
    swap_round: Option<u32>,
}

pub struct GpuSampler {
    /// Settings, dimension, per-chain (step size, beta), steps taken.
    core: super::ChainState,
    ctx: Arc<GpuContext>,
    kernel: Arc<Kernel>,
    swap_kernel: Option<Arc<Kernel>>,
    groups: Vec<ChainGroup>,
    dim_scale: wgpu::Buffer,
    steps_per_dispatch: u32,
    /// Chains per workgroup: 64 single-chain invocations, or one tile of the tiled kernels.
    chains_per_workgroup: u32,
    /// The energy's parameters, as the kernels read them.
    energy_params: wgpu::Buffer,
    /// The energy's first image term: where its luminance starts in `energy_params`, and its
    /// width and height in pixels.
    image: Option<(usize, (usize, usize))>,
    /// What copies a host texture into the image term (made at the first update).
    texture_upload: Option<crate::energy::image::TextureUpload>,
}

/// The network to evaluate with the tiled kernels, when the configuration and energy call for
/// them: ULA or MALA on an MLP energy with a hidden layer.
fn tiled_net(energy: &Energy, config: &SamplerConfig) -> Result<Option<TiledNet>> {
    let net = match energy {
        Energy::Net(n) if matches!(config.kind, SamplerKind::Ula | SamplerKind::Mala) => {
            n.as_mlp().filter(|m| m.layers().len() >= 2)
        }
        _ => None,
    };
    match (config.tuning.mlp_strategy, net) {
        (MlpStrategy::PerChain, _) | (MlpStrategy::Auto, None) => Ok(None),
        (MlpStrategy::Auto, Some(m)) => Ok((m.max_hidden_width() >= TILED_MIN_WIDTH).then(|| m.wgsl_tiled_module())),
        (MlpStrategy::Tiled, Some(m)) => Ok(Some(m.wgsl_tiled_module())),
        (MlpStrategy::Tiled, None) => Err(Error::invalid(
            "mlp strategy",
            "the tiled kernels run ULA or MALA on an energy that is one MLP with a hidden layer",
        )),
    }
}

/// The largest fused per-chain kernel compiled on a software adapter (lavapipe's LLVM spends
/// minutes on a 512-d state per invocation, and crashes near d = 10^6) and on a hardware one
/// (whose compilers spill private arrays to memory long before): (private floats per
/// invocation, energy terms inlined). README.md (GPU kernel size) documents them.
pub const FUSED_LIMIT_SOFTWARE: (u64, u64) = (6 * 128, 16);
pub const FUSED_LIMIT_HARDWARE: (u64, u64) = (6 * 8192, 256);

/// The size of the fused per-chain kernel for `energy`: private floats per invocation (state,
/// proposal, gradients and momentum are `array<f32, DIM>` each; an MLP keeps every layer's
/// activations) and the energy terms inlined into it.
pub fn fused_kernel_size(energy: &Energy) -> (u64, u64) {
    fn walk(e: &Energy) -> (u64, u64) {
        match e {
            Energy::Sum { terms } => terms.iter().map(|(_, t)| walk(t)).fold((0, 0), |a, b| (a.0.max(b.0), a.1 + b.1)),
            Energy::Net(n) => match n.as_mlp() {
                Some(m) => (2 * m.dims().iter().map(|&w| w as u64).sum::<u64>(), m.layers().len() as u64),
                None => (0, 1),
            },
            // Three more `array<f32, DIM>` (g.x, its gradient, the running sum) around the inner's.
            Energy::Group { inner, .. } => {
                let (network, terms) = walk(inner);
                (network + 3 * inner.dim() as u64, terms)
            }
            // Two more arrays of the slice's length (the gathered point and its gradient).
            Energy::Slice { inner, indices, .. } => {
                let (network, terms) = walk(inner);
                (network + 2 * indices.len() as u64, terms)
            }
            _ => (0, 1),
        }
    }
    let (network, terms) = walk(energy);
    (6 * energy.dim() as u64 + network, terms)
}

fn kernel_source(kind: SamplerKind) -> (&'static str, &'static str) {
    match kind {
        SamplerKind::Ula => ("sampler/langevin.wgsl", "ula"),
        SamplerKind::Mala => ("sampler/langevin.wgsl", "mala"),
        SamplerKind::Hmc => ("sampler/hmc.wgsl", "hmc"),
        SamplerKind::Rwmh => ("sampler/rwmh.wgsl", "rwmh"),
    }
}

impl GpuSampler {
    pub fn new(ctx: Arc<GpuContext>, energy: &Energy, config: SamplerConfig, initial: &[f32]) -> Result<Self> {
        config.validate()?;
        energy.validate()?;
        if energy.has_layered_net() {
            return Err(Error::invalid(
                "energy",
                "networks of layer kernels (convolutions, several outputs) sample with LayeredSampler (prelude::gpu_sampler picks the sampler for any energy)",
            ));
        }
        let dim = energy.dim();
        let replicas = config.replicas();
        let base = check_initial(initial, dim, replicas)?;
        let chains = base * replicas;
        let limits = ctx.limits();
        let row_bytes = (dim * 4) as u64;
        let slots = config.trace_slots() as u64;
        let binding = limits.max_storage_buffer_binding_size;
        // Tiled kernels use 16 chains per workgroup, the others 64; the tighter bound serves both.
        let mut max_chains =
            (binding / row_bytes).min(limits.max_compute_workgroups_per_dimension as u64 * TILE_CHAINS as u64);
        if slots > 0 {
            max_chains = max_chains.min(binding / (row_bytes * slots));
        }
        if let Some(m) = config.tuning.max_chains_per_dispatch {
            max_chains = max_chains.min(m as u64);
        }
        let mut tiled = tiled_net(energy, &config)?;
        if tiled.is_none() {
            let software = ctx.adapter_info().is_some_and(crate::gpu::executor::is_software);
            let (max_floats, max_terms) = if software { FUSED_LIMIT_SOFTWARE } else { FUSED_LIMIT_HARDWARE };
            let (floats, terms) = fused_kernel_size(energy);
            if floats > max_floats || terms > max_terms {
                let mlp = match energy {
                    Energy::Net(n) => n.as_mlp().filter(|m| m.layers().len() >= 2),
                    _ => None,
                };
                match mlp {
                    // The tiled kernels keep an MLP's activations in workgroup memory instead.
                    Some(m)
                        if config.tuning.mlp_strategy == MlpStrategy::Auto
                            && matches!(config.kind, SamplerKind::Ula | SamplerKind::Mala) =>
                    {
                        tiled = Some(m.wgsl_tiled_module());
                    }
                    _ => {
                        return Err(Error::Limit(format!(
                            "the fused {} kernel for this energy (d={dim}) would hold {floats} private floats and inline {terms} energy terms \
                             per invocation, above the {max_floats} and {max_terms} this {} adapter compiles in reasonable time \
                             (a software adapter's LLVM takes minutes or crashes on larger kernels); use --backend cpu{}",
                            config.kind.name(),
                            if software { "software" } else { "hardware" },
                            if software { " or a hardware GPU" } else { "" }
                        )));
                    }
                }
            }
        }
        let energy_module = energy.wgsl_module();
        let (kernel, chains_per_workgroup, eval_iterations) = match &tiled {
            Some(net) => {
                let entry = if config.kind == SamplerKind::Mala { "mala_tiled" } else { "ula_tiled" };
                let wgsl = crate::gpu::shader::assemble(
                    "sampler/langevin_tiled.wgsl",
                    &[("energy", &energy_module), ("mlp_net", &net.source)],
                )?;
                // The tiled kernels bind a per-chain scratch buffer after the others.
                let kernel = ctx.kernel(&format!("langevin_tiled.wgsl[mlp; d={dim}]"), &wgsl, entry)?;
                (kernel, TILE_CHAINS as u32, net.loop_iterations)
            }
            None => {
                let (file, entry) = kernel_source(config.kind);
                let wgsl = crate::gpu::shader::assemble(file, &[("energy", &energy_module)])?;
                let kernel = ctx.kernel(&format!("{file}[{}; d={dim}]", energy.kind()), &wgsl, entry)?;
                (kernel, launch::WG, energy.loop_iterations())
            }
        };
        let scratch_bytes = tiled.as_ref().map_or(0, |n| n.scratch_floats as u64 * 4);
        if let Some(fit) = binding.checked_div(scratch_bytes) {
            max_chains = max_chains.min(fit);
        }
        // Replicas of one chain stay in one group so swaps never cross groups.
        let max_chains = max_chains / replicas as u64 * replicas as u64;
        if max_chains == 0 {
            return Err(Error::Limit(format!(
                "one chain's {replicas} replicas with a trace of {slots} slots x {dim} floats exceed the \
                 {binding}-byte storage binding limit; thin more, trace fewer steps or use fewer replicas"
            )));
        }
        let swap_kernel = match &config.tempering {
            Some(_) => {
                let wgsl = crate::gpu::shader::assemble("sampler/tempering.wgsl", &[])?;
                Some(ctx.kernel("sampler/tempering.wgsl", &wgsl, "swap")?)
            }
            None => None,
        };
        let mut steps_per_dispatch = config.tuning.steps_per_dispatch.unwrap_or_else(|| {
            // Enough fused steps to amortise a dispatch, few enough to keep one short (a desktop
            // GPU's watchdog): the work of a step ~ chains x the energy's loop iterations.
            let cost = match config.kind {
                SamplerKind::Hmc => config.leapfrog as u64,
                _ => 1,
            };
            let work = chains as u64 * (eval_iterations + dim as u64) * cost;
            ((1u64 << 24) / work.max(1)).clamp(1, 64) as u32
        });
        if let Some(t) = &config.tempering {
            steps_per_dispatch = steps_per_dispatch.min(t.swap_every);
        }
        // Loop iterations per step of one invocation: energy evaluations plus the vector loops.
        let d = dim as u64;
        let per_step = match config.kind {
            SamplerKind::Hmc => (config.leapfrog + config.leapfrog_jitter) as u64 * (eval_iterations + 3 * d) + 4 * d,
            _ => eval_iterations + 5 * d,
        };
        ctx.check_loop_budget(&format!("one {} step", config.kind.name()), 2 * per_step)?;
        if let Some(budget) = ctx.loop_budget() {
            steps_per_dispatch = steps_per_dispatch.min(((budget - per_step) / per_step).max(1) as u32);
        }
        let chain_params = config.chain_params(base);
        let params = energy.pack_params();
        let (groups, dim_scale, energy_params) = ctx.scoped("allocating chain buffers", || {
            let energy_params = ctx.storage_buffer("energy params", bytemuck::cast_slice(&params));
            let dim_scale = ctx.storage_buffer("per-dimension scale", bytemuck::cast_slice(&vec![1.0f32; dim]));
            let groups = split(chains, max_chains as usize)
                .into_iter()
                .map(|(first, count)| {
                    let init: Vec<f32> = (first..first + count)
                        .flat_map(|c| initial[c / replicas * dim..(c / replicas + 1) * dim].iter().copied())
                        .collect();
                    // VERTEX too: a host can draw the chains straight from it.
                    let state =
                        ctx.storage_buffer_with("chain state", bytemuck::cast_slice(&init), wgpu::BufferUsages::VERTEX);
                    let stats = ctx.zeroed_storage_buffer("chain stats", count as u64 * 16);
                    let energies =
                        ctx.zeroed_storage_buffer_with("chain energies", count as u64 * 4, wgpu::BufferUsages::VERTEX);
                    let trace = ctx.zeroed_storage_buffer("chain trace", slots * count as u64 * row_bytes);
                    let group_params =
                        ctx.storage_buffer("chain params", bytemuck::cast_slice(&chain_params[first..first + count]));
                    let swaps =
                        ctx.zeroed_storage_buffer("swap counts", (count / replicas * (replicas - 1)) as u64 * 4);
                    let slots = DISPATCHES_PER_SUBMIT as u64;
                    let (step_slots, swap_slots) = (ParamSlots::new(&ctx, slots), ParamSlots::new(&ctx, slots));
                    let scratch = (scratch_bytes > 0)
                        .then(|| ctx.zeroed_storage_buffer("mlp scratch", scratch_bytes * count as u64));
                    let mut buffers =
                        vec![&state, &stats, &energy_params, &energies, &trace, &group_params, &dim_scale];
                    buffers.extend(&scratch);
                    let step_bindings =
                        launch::bind_group(&ctx, &kernel, &step_slots.buffer, size_of::<StepParams>() as u64, &buffers);
                    let swap_bindings = swap_kernel.as_ref().map(|k| {
                        let buffers = [&state, &stats, &energies, &group_params, &swaps];
                        launch::bind_group(&ctx, k, &swap_slots.buffer, size_of::<SwapParams>() as u64, &buffers)
                    });
                    ChainGroup {
                        chains: count as u32,
                        first: first as u32,
                        state,
                        stats,
                        energies,
                        trace,
                        chain_params: group_params,
                        swaps,
                        step_slots,
                        swap_slots,
                        _scratch: scratch,
                        step_bindings,
                        swap_bindings,
                    }
                })
                .collect::<Vec<_>>();
            (groups, dim_scale, energy_params)
        })?;
        Ok(Self {
            ctx,
            kernel,
            swap_kernel,
            core: super::ChainState::new(config, dim, chain_params),
            groups,
            dim_scale,
            steps_per_dispatch,
            chains_per_workgroup,
            energy_params,
            image: energy.image_term().map(|(at, img)| (at, (img.width, img.height))),
            texture_upload: None,
        })
    }

    /// Records into the host's `encoder` what makes the sampler's image energy (its first image
    /// term) the host texture's current pixels, all on the device: steps recorded after it, in
    /// this submit or later, sample the new picture. The texture has the image's size in pixels
    /// and a format [`ImageDensity::from_texture`] reads; `options` gives its gamma and invert,
    /// while the picture's extent and ε stay as the sampler was built. A texture black
    /// everywhere leaves ε alone: the chains spread evenly over the picture.
    ///
    /// [`ImageDensity::from_texture`]: crate::prelude::ImageDensity::from_texture
    pub fn encode_image_from_texture(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        texture: &wgpu::Texture,
        options: ImageOptions,
    ) -> Result<()> {
        let Some((at, size)) = self.image else {
            return Err(Error::invalid("energy", "has no image term for a texture to replace"));
        };
        if self.texture_upload.is_none() {
            self.texture_upload = Some(crate::energy::image::TextureUpload::new(&self.ctx, size)?);
        }
        let upload = self.texture_upload.as_mut().expect("made above");
        upload.encode(&self.ctx, encoder, texture, options, &self.energy_params, at)
    }

    /// Dispatches for `steps` steps from the current position: pieces of at most
    /// `steps_per_dispatch` steps, ending on swap boundaries when tempering.
    fn plan(&self, steps: u32) -> Vec<Piece> {
        let swap_every = self.core.config.tempering.as_ref().map(|t| t.swap_every);
        let mut pieces = Vec::new();
        for (first, n, swap_round) in segments(self.core.steps_done, steps, swap_every) {
            for (offset, count) in split(n as usize, self.steps_per_dispatch as usize) {
                let last = offset + count == n as usize;
                pieces.push(Piece {
                    first: first + offset as u32,
                    n: count as u32,
                    swap_round: swap_round.filter(|_| last),
                });
            }
        }
        pieces
    }

    /// Records `steps` steps for all chains into the caller's encoder, for applications that
    /// submit their own command buffers; any number of calls may share one encoder or submit.
    /// One call takes at most [`Self::max_steps_per_encode`] steps (`DISPATCHES_PER_SUBMIT`
    /// dispatches); call it again for more.
    pub fn encode(&mut self, encoder: &mut wgpu::CommandEncoder, steps: u32) -> Result<()> {
        let pieces = self.plan(steps);
        if pieces.len() > DISPATCHES_PER_SUBMIT {
            return Err(Error::invalid("steps", format!("at most {} per encode", self.max_steps_per_encode())));
        }
        self.encode_pieces(encoder, &pieces);
        self.core.steps_done += steps;
        Ok(())
    }

    /// Steps one [`Self::encode`] can always take.
    pub fn max_steps_per_encode(&self) -> u32 {
        // A plan may start mid-interval, which costs one extra piece.
        self.steps_per_dispatch * (DISPATCHES_PER_SUBMIT as u32 - 1)
    }

    /// Records `pieces` into `encoder`. The per-dispatch parameters travel as copies recorded
    /// in the same encoder ([`ParamSlots::record_upload`]), so any number of encodes can share
    /// one submit.
    fn encode_pieces(&mut self, encoder: &mut wgpu::CommandEncoder, pieces: &[Piece]) {
        let cfg = &self.core.config;
        let seed = crate::rng::key(cfg.seed);
        let replicas = cfg.replicas() as u32;
        let (box_lo, box_hi) = cfg.box_clamp.unwrap_or((0.0, 0.0));
        for group in &mut self.groups {
            let n_base = group.chains / replicas;
            let mut offsets = Vec::with_capacity(pieces.len());
            for piece in pieces {
                let step = group.step_slots.push(&StepParams {
                    n_chains: group.chains,
                    chain_offset: cfg.chain_offset * replicas + group.first,
                    step_base: piece.first,
                    n_steps: piece.n,
                    seed,
                    noise_scale: cfg.noise_scale.unwrap_or(-1.0),
                    grad_clamp: cfg.grad_clamp.unwrap_or(0.0),
                    box_lo,
                    box_hi,
                    use_box: cfg.box_clamp.is_some() as u32,
                    leapfrog: cfg.leapfrog,
                    leapfrog_jitter: cfg.leapfrog_jitter,
                    step_jitter: cfg.step_jitter,
                    trace_every: cfg.trace_every,
                    trace_slots: cfg.trace_slots(),
                    trace_start: cfg.trace_start,
                    _pad: 0,
                });
                let swap = piece.swap_round.filter(|_| self.swap_kernel.is_some()).map(|round| {
                    group.swap_slots.push(&SwapParams {
                        n_base,
                        replicas,
                        round,
                        parity: round % 2,
                        seed,
                        base_offset: cfg.chain_offset + group.first / replicas,
                        dim: self.core.dim as u32,
                    })
                });
                offsets.push((step, swap));
            }
            group.step_slots.record_upload(&self.ctx, encoder);
            group.swap_slots.record_upload(&self.ctx, encoder);
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("mcmc"), timestamp_writes: None });
            for (step, swap) in offsets {
                let grid = [group.chains.div_ceil(self.chains_per_workgroup), 1, 1];
                launch::record(&mut pass, &self.kernel, &group.step_bindings, Some(step), grid);
                if let (Some(swap), Some(kernel), Some(bindings)) = (swap, &self.swap_kernel, &group.swap_bindings) {
                    launch::dispatch(&mut pass, kernel, bindings, swap, n_base * (replicas / 2).max(1), 1);
                }
            }
        }
    }

    /// The device buffers holding each group's chain states ([chains, dim] f32, replicas
    /// included), for hosts that bind them directly, with the index of each group's first chain.
    pub fn state_buffers(&self) -> Vec<(u32, &wgpu::Buffer)> {
        self.groups.iter().map(|g| (g.first, &g.state)).collect()
    }

    /// The chains' states as one buffer when they fit one (a single group), [chains, dim] f32
    /// with STORAGE | VERTEX | COPY_SRC usage: a host binds it as a vertex buffer (stride
    /// 4 dim bytes) or a storage buffer. With several groups, see [`Self::encode_copy_state`].
    pub fn state_buffer(&self) -> Option<&wgpu::Buffer> {
        match self.groups.as_slice() {
            [only] => Some(&only.state),
            _ => None,
        }
    }

    /// The chains' energies at their current states (`[chains]` f32, STORAGE | VERTEX) when one
    /// group holds every chain: a host colours or sizes what it draws by them.
    pub fn energies_buffer(&self) -> Option<&wgpu::Buffer> {
        match self.groups.as_slice() {
            [only] => Some(&only.energies),
            _ => None,
        }
    }

    /// Bytes of all chains' states ([chains, dim] f32, replicas included).
    pub fn state_bytes(&self) -> u64 {
        self.groups.iter().map(|g| g.chains as u64 * self.core.dim as u64 * 4).sum()
    }

    /// Records a copy of every chain's state, in chain order, into the host's buffer `dst` (COPY_DST
    /// usage, [`Self::state_bytes`] from `offset`): the chains as one buffer however many groups
    /// hold them.
    pub fn encode_copy_state(&self, encoder: &mut wgpu::CommandEncoder, dst: &wgpu::Buffer, offset: u64) -> Result<()> {
        if !offset.is_multiple_of(4)
            || offset + self.state_bytes() > dst.size()
            || !dst.usage().contains(wgpu::BufferUsages::COPY_DST)
        {
            return Err(Error::invalid(
                "state copy",
                format!(
                    "the destination needs COPY_DST usage and {} bytes from offset {offset} (a multiple of 4); it has {} bytes, usage {:?}",
                    self.state_bytes(),
                    dst.size(),
                    dst.usage()
                ),
            ));
        }
        let mut at = offset;
        for g in &self.groups {
            let bytes = g.chains as u64 * self.core.dim as u64 * 4;
            encoder.copy_buffer_to_buffer(&g.state, 0, dst, at, bytes);
            at += bytes;
        }
        Ok(())
    }

    /// The chains' states ([chains, dim], replicas included) without blocking: a future that
    /// resolves once the device has copied them (see [`GpuContext::read_buffers_async`] for who
    /// polls the device).
    pub fn read_state_async(&self) -> Result<impl std::future::Future<Output = Result<Vec<f32>>> + use<>> {
        let parts: Vec<(&wgpu::Buffer, u64)> =
            self.groups.iter().map(|g| (&g.state, g.chains as u64 * self.core.dim as u64 * 4)).collect();
        let readback = self.ctx.read_buffers_async(&parts)?;
        Ok(async move { Ok(bytemuck::pod_collect_to_vec(&readback.await?.concat())) })
    }

    fn gather<T: bytemuck::Pod>(&self, pick: impl Fn(&ChainGroup) -> (&wgpu::Buffer, u64)) -> Result<Vec<T>> {
        let parts: Vec<(&wgpu::Buffer, u64)> = self.groups.iter().map(pick).collect();
        Ok(bytemuck::pod_collect_to_vec(&self.ctx.read_buffers(&parts)?.concat()))
    }
}

/// The engine's side of a [`GpuSampler`], out of the public API (the crate's tests name it
/// through the `internals` feature).
pub trait GpuSamplerInternals {
    /// The energy's parameter block as the kernels see it now (a blocking readback; the
    /// selftest's image-upload check and the tests).
    fn read_energy_params(&self) -> Result<Vec<f32>>;
}

impl GpuSamplerInternals for GpuSampler {
    fn read_energy_params(&self) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(
            &self.ctx.read_buffers(&[(&self.energy_params, self.energy_params.size())])?.concat(),
        ))
    }
}

impl ChainSampler for GpuSampler {
    fn run(&mut self, steps: u32) -> Result<()> {
        let pieces = self.plan(steps);
        let ctx = self.ctx.clone();
        for batch in pieces.chunks(DISPATCHES_PER_SUBMIT) {
            ctx.submit("sampler steps", |encoder| self.encode_pieces(encoder, batch))?;
        }
        self.core.steps_done += steps;
        self.ctx.wait()
    }

    fn all_states(&self) -> Result<Vec<f32>> {
        self.gather(|g| (&g.state, g.chains as u64 * self.core.dim as u64 * 4))
    }

    fn stats(&self) -> Result<ChainStats> {
        let stats: Vec<u32> = self.gather(|g| (&g.stats, g.chains as u64 * 16))?;
        let r = self.core.config.replicas() as u64;
        let swaps = if r > 1 { self.gather(|g| (&g.swaps, g.chains as u64 / r * (r - 1) * 4))? } else { Vec::new() };
        Ok(ChainStats::from_kernel_rows(&stats, self.gather(|g| (&g.energies, g.chains as u64 * 4))?, swaps))
    }

    fn all_traces(&self) -> Result<Option<Vec<f32>>> {
        let slots = self.core.config.trace_slots() as usize;
        if slots == 0 {
            return Ok(None);
        }
        let (d, chains) = (self.core.dim, self.core.chain_params.len());
        let list: Vec<(&wgpu::Buffer, u64)> =
            self.groups.iter().map(|g| (&g.trace, (slots * g.chains as usize * d * 4) as u64)).collect();
        let parts = self.ctx.read_buffers(&list)?;
        // Each group holds [slots, its chains, dim]; interleave into [slots, all chains, dim].
        let mut out = vec![0.0f32; slots * chains * d];
        for (group, bytes) in self.groups.iter().zip(parts) {
            let values: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
            let n = group.chains as usize;
            for s in 0..slots {
                let dst = (s * chains + group.first as usize) * d;
                out[dst..dst + n * d].copy_from_slice(&values[s * n * d..(s + 1) * n * d]);
            }
        }
        Ok(Some(out))
    }

    fn set_step_sizes(&mut self, steps: &[f32]) -> Result<()> {
        self.core.set_step_sizes(steps)?;
        for g in &self.groups {
            let range = g.first as usize..(g.first + g.chains) as usize;
            self.ctx.queue().write_buffer(&g.chain_params, 0, bytemuck::cast_slice(&self.core.chain_params[range]));
        }
        Ok(())
    }

    fn set_noise_scale(&mut self, scale: Option<f32>) -> Result<()> {
        self.core.set_noise_scale(scale)
    }

    fn set_dim_scale(&mut self, scale: &[f32]) -> Result<()> {
        super::check_dim_scale(scale, self.core.dim)?;
        self.ctx.queue().write_buffer(&self.dim_scale, 0, bytemuck::cast_slice(scale));
        Ok(())
    }

    fn chain_state(&self) -> &super::ChainState {
        &self.core
    }

    fn dispatches_per_step(&self) -> f64 {
        let swaps = self.core.config.tempering.as_ref().map_or(0.0, |t| self.groups.len() as f64 / t.swap_every as f64);
        self.groups.len() as f64 / self.steps_per_dispatch as f64 + swaps
    }

    fn executor(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }
}
