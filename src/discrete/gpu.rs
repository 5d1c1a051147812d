//! GPU launcher of `shaders/discrete/spins.wgsl`: single-site sweeps of many chains of a
//! discrete model, the twin of [`super::cpu::CpuSpins`] (same layout, rule and counters).
//! A submit records up to [`SWEEPS_PER_SUBMIT`] sweeps (one dispatch per colour class each);
//! nothing is read back until [`GpuSpins::states`].

use super::SpinModel;
use super::graph::Layout;
use super::rules::{Rules, Update};
use crate::gpu::launch::{ParamSlots, WG, bind_group, record};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::{Error, Result};
use std::sync::Arc;

/// Sweeps recorded per submit (bounds the work of one submit for desktop watchdogs).
pub const SWEEPS_PER_SUBMIT: u32 = 64;

/// Mirrors `Params` in shaders/discrete/spins.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SpinParams {
    pub seed: [u32; 2],
    pub chains: u32,
    pub words: u32,
    pub first_word: u32,
    pub class_words: u32,
    pub class_sites: u32,
    pub sweep: u32,
    pub chain_offset: u32,
    pub beta: f32,
    pub max_degree: u32,
    pub _pad: u32,
}

/// The generated `discrete/config.wgsl` of a rule.
pub fn config_module(rules: &Rules) -> String {
    format!(
        "const Q: u32 = {}u;\nconst EXACT: bool = {};\nconst METROPOLIS: bool = {};\nconst ZERO_T: bool = {};\n",
        rules.q,
        rules.exact,
        rules.update == Update::Metropolis,
        rules.zero_temperature
    )
}

/// Many chains of one model on the GPU, stored in the colour-major layout.
pub struct GpuSpins {
    ctx: Arc<GpuContext>,
    kernel: Arc<Kernel>,
    layout: Layout,
    rules_beta: f32,
    max_degree: u32,
    chains: usize,
    seed: u64,
    first_chain: u32,
    states: wgpu::Buffer,
    group: wgpu::BindGroup,
    params: ParamSlots,
    sweeps_done: u32,
}

impl GpuSpins {
    /// Chains starting from `initial` (bytes in site order, one chain after another); chain k
    /// is chain `first_chain + k` of the run for its random numbers.
    pub fn new(
        ctx: Arc<GpuContext>,
        model: &SpinModel,
        update: Update,
        initial: &[u8],
        seed: u64,
        first_chain: u32,
    ) -> Result<Self> {
        let chains = super::cpu::check_states(model, initial)?;
        let layout = Layout::new(&model.graph.colouring());
        let rules = Rules::new(model, &layout, update);
        let limits = ctx.limits();
        let widest = layout.classes.iter().map(|c| c.1).max().unwrap_or(0);
        if chains > limits.max_compute_workgroups_per_dimension as usize
            || widest.div_ceil(WG) > limits.max_compute_workgroups_per_dimension
        {
            return Err(Error::Limit(format!(
                "{chains} chains of a colour class of {widest} words exceed {} workgroups per dispatch dimension",
                limits.max_compute_workgroups_per_dimension
            )));
        }
        let state_bytes = chains as u64 * layout.words as u64 * 4;
        if state_bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Limit(format!(
                "{chains} chains of {} sites need {state_bytes} bytes of states, above the {}-byte storage binding limit",
                model.sites(),
                limits.max_storage_buffer_binding_size
            )));
        }
        let wgsl =
            crate::gpu::shader::assemble("discrete/spins.wgsl", &[("discrete/config.wgsl", &config_module(&rules))])?;
        let kernel = ctx.kernel("discrete/spins.wgsl", &wgsl, "sweep_class")?;
        // Storage bindings may not be empty: a graph without edges or a float rule binds one
        // unused word.
        let nonempty = |v: &[u8]| if v.is_empty() { vec![0u8; 4] } else { v.to_vec() };
        let (states, group, params) = ctx.scoped("allocating discrete chains", || {
            let states = ctx.storage_buffer("spin states", bytemuck::cast_slice(&layout.pack(initial)));
            let offsets = ctx.storage_buffer("spin offsets", bytemuck::cast_slice(&rules.offsets));
            let neighbours = ctx.storage_buffer("spin neighbours", &nonempty(bytemuck::cast_slice(&rules.neighbours)));
            let couplings = ctx.storage_buffer("spin couplings", &nonempty(bytemuck::cast_slice(&rules.couplings)));
            let field = ctx.storage_buffer("spin fields", &nonempty(bytemuck::cast_slice(&rules.field)));
            let table = ctx.storage_buffer("spin rule table", &nonempty(bytemuck::cast_slice(&rules.table)));
            let params = ParamSlots::new(&ctx, SWEEPS_PER_SUBMIT as u64 * layout.classes.len() as u64);
            let size = std::mem::size_of::<SpinParams>() as u64;
            let group = bind_group(
                &ctx,
                &kernel,
                &params.buffer,
                size,
                &[&states, &offsets, &neighbours, &couplings, &field, &table],
            );
            (states, group, params)
        })?;
        Ok(GpuSpins {
            ctx,
            kernel,
            layout,
            rules_beta: rules.beta,
            max_degree: rules.max_degree,
            chains,
            seed,
            first_chain,
            states,
            group,
            params,
            sweeps_done: 0,
        })
    }

    /// `sweeps` sweeps: every colour class once, in colour order.
    pub fn run(&mut self, sweeps: u32) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut left = sweeps;
        while left > 0 {
            let n = left.min(SWEEPS_PER_SUBMIT);
            ctx.submit_pass("discrete sweeps", |pass| {
                for s in 0..n {
                    for &(first_word, class_words, class_sites) in &self.layout.classes {
                        let p = SpinParams {
                            seed: crate::rng::key(self.seed),
                            chains: self.chains as u32,
                            words: self.layout.words as u32,
                            first_word,
                            class_words,
                            class_sites,
                            sweep: self.sweeps_done + s,
                            chain_offset: self.first_chain,
                            beta: self.rules_beta,
                            max_degree: self.max_degree,
                            _pad: 0,
                        };
                        let slot = self.params.push(&p);
                        record(
                            pass,
                            &self.kernel,
                            &self.group,
                            Some(slot),
                            [class_words.div_ceil(WG), self.chains as u32, 1],
                        );
                    }
                }
                self.params.flush(&ctx);
            })?;
            ctx.wait()?;
            self.sweeps_done += n;
            left -= n;
        }
        Ok(())
    }

    /// Replaces the states (bytes in site order, the same number of chains), keeping the
    /// sweep count (a tempering swap).
    pub fn set_states(&mut self, states: &[u8]) -> Result<()> {
        let words = self.layout.pack(states);
        self.ctx.scoped("uploading discrete states", || {
            self.ctx.queue().write_buffer(&self.states, 0, bytemuck::cast_slice(&words))
        })
    }

    /// The states, bytes in site order, one chain after another.
    pub fn states(&self) -> Result<Vec<u8>> {
        let bytes = self.chains as u64 * self.layout.words as u64 * 4;
        let out = self.ctx.read_buffers(&[(&self.states, bytes)])?;
        Ok(self.layout.unpack(&bytemuck::pod_collect_to_vec::<u8, u32>(&out[0])))
    }
}

#[cfg(any(test, feature = "internals"))]
/// The params structs mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(
        SpinParams,
        "discrete/spins.wgsl",
        "Params",
        [seed, chains, words, first_word, class_words, class_sites, sweep, chain_offset, beta, max_degree]
    )]
}
