//! GPU launcher of `shaders/discrete/cluster.wgsl`: Swendsen–Wang and Wolff steps of many
//! chains, the twin of [`super::ClusterChains`] (same edges, counters and cluster roots, so
//! the same states bit for bit). A submit records up to [`STEPS_PER_SUBMIT`] steps; states
//! stay on the GPU until [`GpuClusterChains::states`].

use super::{Bonds, Cluster, check};
use crate::discrete::SpinModel;
use crate::gpu::launch::{ParamSlots, WG, bind_group, record};
use crate::gpu::{ContextInternals, GpuContext, Kernel};
use crate::{Error, Result};
use std::sync::Arc;

/// Steps recorded per submit (bounds the work of one submit for desktop watchdogs).
pub const STEPS_PER_SUBMIT: u32 = 64;

/// Mirrors `Params` in shaders/discrete/cluster.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ClusterParams {
    pub seed: [u32; 2],
    pub chains: u32,
    pub sites: u32,
    pub edges: u32,
    pub step: u32,
    pub chain_offset: u32,
    pub q: u32,
}

#[cfg(any(test, feature = "internals"))]
/// The params struct mirrored from the WGSL, for tests/layouts.rs.
#[doc(hidden)]
pub fn mirrors() -> Vec<crate::gpu::layout::Mirror> {
    use crate::gpu::layout::mirror;
    vec![mirror!(ClusterParams, "discrete/cluster.wgsl", "Params", [seed, chains, sites, edges, step, chain_offset, q])]
}

/// Cluster steps of many chains on the GPU.
pub struct GpuClusterChains {
    ctx: Arc<GpuContext>,
    kind: Cluster,
    /// reset, bond, pick, relabel (Swendsen–Wang's or Wolff's).
    kernels: [Arc<Kernel>; 4],
    group: wgpu::BindGroup,
    params: ParamSlots,
    states: wgpu::Buffer,
    wolff: wgpu::Buffer,
    q: u32,
    sites: usize,
    edges: usize,
    chains: usize,
    seed: u64,
    first_chain: u32,
    steps_done: u32,
    /// Sites flipped over all Wolff steps (for the mean cluster size).
    pub flipped: u64,
}

impl GpuClusterChains {
    /// Chains starting from `initial` (bytes in site order, one chain after another); chain k
    /// is chain `first_chain + k` of the run for its random numbers.
    pub fn new(
        ctx: Arc<GpuContext>,
        model: &SpinModel,
        kind: Cluster,
        initial: &[u8],
        seed: u64,
        first_chain: u32,
    ) -> Result<Self> {
        check(model)?;
        let chains = crate::discrete::cpu::check_states(model, initial)?;
        let bonds = Bonds::new(model);
        let (sites, edges) = (model.sites(), bonds.ends.len());
        let limits = ctx.limits();
        let widest = sites.max(edges.div_ceil(4)).div_ceil(WG as usize);
        let most = limits.max_compute_workgroups_per_dimension as usize;
        if chains > most || widest > most {
            return Err(Error::Limit(format!(
                "{chains} chains of {sites} sites and {edges} edges exceed {most} workgroups per dispatch dimension"
            )));
        }
        let bytes = chains as u64 * sites as u64 * 4;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Limit(format!(
                "{chains} chains of {sites} sites need {bytes} bytes of states, above the {}-byte storage binding limit",
                limits.max_storage_buffer_binding_size
            )));
        }
        let wgsl = crate::gpu::shader::assemble("discrete/cluster.wgsl", &[])?;
        let relabel = match kind {
            Cluster::SwendsenWang => "relabel_swendsen_wang",
            Cluster::Wolff => "relabel_wolff",
        };
        let kernel = |entry| ctx.kernel("discrete/cluster.wgsl", &wgsl, entry);
        let kernels = [kernel("reset")?, kernel("bond")?, kernel("pick")?, kernel(relabel)?];
        let labels: Vec<u32> = initial.iter().map(|&s| s as u32).collect();
        // Storage bindings may not be empty: a graph without edges binds one unused edge.
        let (ends, thresholds) = match edges {
            0 => (vec![[0u32; 2]], vec![0u32]),
            _ => (bonds.ends, bonds.thresholds),
        };
        let (states, wolff, group, params) = ctx.scoped("allocating cluster chains", || {
            let states = ctx.storage_buffer("cluster states", bytemuck::cast_slice(&labels));
            let parent = ctx.zeroed_storage_buffer("cluster parents", bytes);
            let ends = ctx.storage_buffer("cluster edges", bytemuck::cast_slice(&ends));
            let thresholds = ctx.storage_buffer("cluster bond thresholds", bytemuck::cast_slice(&thresholds));
            let wolff = ctx.zeroed_storage_buffer("wolff picks", chains as u64 * 12);
            let params = ParamSlots::new(&ctx, STEPS_PER_SUBMIT as u64);
            let size = std::mem::size_of::<ClusterParams>() as u64;
            let group =
                bind_group(&ctx, &kernels[0], &params.buffer, size, &[&states, &parent, &ends, &thresholds, &wolff]);
            (states, wolff, group, params)
        })?;
        Ok(GpuClusterChains {
            ctx,
            kind,
            kernels,
            group,
            params,
            states,
            wolff,
            q: model.q,
            sites,
            edges,
            chains,
            seed,
            first_chain,
            steps_done: 0,
            flipped: 0,
        })
    }

    pub fn run(&mut self, steps: u32) -> Result<()> {
        let ctx = self.ctx.clone();
        let (sites, edges, chains) = (self.sites as u32, self.edges as u32, self.chains as u32);
        let mut left = steps;
        while left > 0 {
            let n = left.min(STEPS_PER_SUBMIT);
            if self.kind == Cluster::Wolff {
                ctx.queue().write_buffer(&self.wolff, 0, &vec![0u8; self.chains * 12]);
            }
            ctx.submit_pass("cluster steps", |pass| {
                for s in 0..n {
                    let p = ClusterParams {
                        seed: crate::rng::key(self.seed),
                        chains,
                        sites,
                        edges,
                        step: self.steps_done + s,
                        chain_offset: self.first_chain,
                        q: self.q,
                    };
                    let slot = Some(self.params.push(&p));
                    let [reset, bond, pick, relabel] = &self.kernels;
                    record(pass, reset, &self.group, slot, [sites.div_ceil(WG), chains, 1]);
                    if edges > 0 {
                        record(pass, bond, &self.group, slot, [edges.div_ceil(4).div_ceil(WG), chains, 1]);
                    }
                    if self.kind == Cluster::Wolff {
                        record(pass, pick, &self.group, slot, [chains.div_ceil(WG), 1, 1]);
                    }
                    record(pass, relabel, &self.group, slot, [sites.div_ceil(WG), chains, 1]);
                }
                self.params.flush(&ctx);
            })?;
            if self.kind == Cluster::Wolff {
                let out = ctx.read_buffers(&[(&self.wolff, self.chains as u64 * 12)])?;
                let picks: Vec<u32> = bytemuck::pod_collect_to_vec(&out[0]);
                self.flipped += picks.chunks(3).map(|p| p[2] as u64).sum::<u64>();
            } else {
                ctx.wait()?;
            }
            self.steps_done += n;
            left -= n;
        }
        Ok(())
    }

    /// The states, bytes in site order, one chain after another.
    pub fn states(&self) -> Result<Vec<u8>> {
        let bytes = self.chains as u64 * self.sites as u64 * 4;
        let out = self.ctx.read_buffers(&[(&self.states, bytes)])?;
        Ok(bytemuck::pod_collect_to_vec::<u8, u32>(&out[0]).into_iter().map(|s| s as u8).collect())
    }

    /// Replaces the states (the same number of chains), keeping the step count.
    pub fn set_states(&mut self, states: &[u8]) -> Result<()> {
        let labels: Vec<u32> = states.iter().map(|&s| s as u32).collect();
        self.ctx.scoped("uploading cluster states", || {
            self.ctx.queue().write_buffer(&self.states, 0, bytemuck::cast_slice(&labels))
        })
    }
}
