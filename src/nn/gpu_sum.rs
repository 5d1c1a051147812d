//! A weighted sum of networks over a batch of points on the GPU: a product of experts
//! (`Energy::Sum` of network terms, [`crate::energy::EnergyInternals::network_terms`]). Each
//! term's pass writes w_t E_t and w_t dE_t/dx (its head applies the weight, so the backward
//! pass carries it); the first term writes the caller's slices, every later one a scratch pair
//! that `add_copy` then adds in. A lone network is the sum of one term. CPU twin: the `Sum`
//! arm of `Energy::add_energy_grad_batch`, which weights each term the same way.

use super::Network;
use super::gpu::{NnKernels, NnOp, Slice};
use super::gpu_net::{GpuNetwork, NetBuffers, max_batch};
use crate::gpu::{ContextInternals, GpuContext};
use crate::{Error, Result};
use std::sync::Arc;

enum Step {
    Pass(GpuNetwork),
    Sum(NnOp),
}

/// The prepared passes of a sum of networks over `n` points (module docs).
pub struct GpuNetSum {
    steps: Vec<Step>,
    /// One per term: the passes' bind groups point into them.
    _buffers: Vec<NetBuffers>,
    _scratch: Option<[wgpu::Buffer; 2]>,
}

/// The most points one pass of every term can take (each term's intermediate values within a
/// storage binding), capped at `cap`.
pub fn max_chunk(ctx: &GpuContext, terms: &[(f32, &Network)], cap: usize) -> usize {
    terms.iter().map(|(_, net)| max_batch(ctx, net)).fold(cap, usize::min).max(1)
}

impl GpuNetSum {
    /// Passes over the n points at `x` ([n, d]) in chunks of `chunk` points, writing
    /// sum_t w_t E_t to `energies` ([n]) and its input gradient to `dx` ([n, d]).
    pub fn new(
        kernels: &NnKernels,
        terms: &[(f32, &Network)],
        chunk: usize,
        n: usize,
        x: Slice,
        energies: Slice,
        dx: Slice,
    ) -> Result<Self> {
        let Some((_, first)) = terms.first() else {
            return Err(Error::invalid("energy", "a sum of networks needs at least one term"));
        };
        let d = first.input_dim();
        if let Some((t, (_, net))) = terms.iter().enumerate().find(|(_, (_, net))| net.input_dim() != d) {
            return Err(Error::invalid(
                format!("energy.terms[{t}]"),
                format!("takes {} inputs, the first term {d}", net.input_dim()),
            ));
        }
        let ctx = kernels.context();
        let chunk = chunk.min(n).max(1);
        let buffers = terms.iter().map(|(_, net)| NetBuffers::new(ctx, net, chunk)).collect::<Result<Vec<_>>>()?;
        let scratch = match terms.len() {
            1 => None,
            _ => Some(ctx.scoped("allocating a sum of networks' scratch", || {
                [
                    ctx.zeroed_storage_buffer("a term's energies", 4 * n as u64),
                    ctx.zeroed_storage_buffer("a term's gradients", 4 * (n * d) as u64),
                ]
            })?),
        };
        let mut steps = Vec::new();
        for (t, ((weight, net), bufs)) in terms.iter().zip(&buffers).enumerate() {
            let (e, g) = match &scratch {
                Some([se, sg]) if t > 0 => (Slice::whole(se), Slice::whole(sg)),
                _ => (energies, dx),
            };
            for start in (0..n).step_by(chunk) {
                let m = chunk.min(n - start);
                let (xs, es, gs) = (x.advanced(start * d), e.advanced(start), g.advanced(start * d));
                steps.push(Step::Pass(GpuNetwork::new(kernels, net, bufs, m, xs, es, Some(gs), false, *weight)?));
            }
            if t > 0 {
                steps.push(Step::Sum(kernels.add_copy(e, Some(energies), energies, n)?));
                steps.push(Step::Sum(kernels.add_copy(g, Some(dx), dx, n * d)?));
            }
        }
        Ok(Self { steps, _buffers: buffers, _scratch: scratch })
    }

    /// Records every term's passes and the sums, in order.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        for step in &self.steps {
            match step {
                Step::Pass(net) => net.record(pass),
                Step::Sum(op) => op.record(pass),
            }
        }
    }

    pub fn dispatches(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Pass(net) => net.dispatches(),
                Step::Sum(op) => op.dispatches(),
            })
            .sum()
    }
}

/// Energies [n] and input gradients [n, d] of the points `xs` ([n, d]) under the weighted sum
/// of `terms`; the GPU twin of `Energy::energy_grad_batch` for such sums.
pub fn energy_grad_batch(ctx: &Arc<GpuContext>, terms: &[(f32, &Network)], xs: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let d = terms.first().map_or(0, |(_, net)| net.input_dim());
    if d == 0 || !xs.len().is_multiple_of(d) {
        return Err(Error::invalid(
            "points",
            format!("{} values do not form rows of the networks' {d} inputs", xs.len()),
        ));
    }
    let n = xs.len() / d;
    // A block's points and gradients each fit one storage binding.
    let block = (ctx.limits().max_storage_buffer_binding_size as usize / (4 * d)).max(1);
    let kernels = NnKernels::new(ctx.clone());
    let (mut energies, mut grads) = (Vec::with_capacity(n), Vec::with_capacity(n * d));
    for start in (0..n).step_by(block) {
        let m = block.min(n - start);
        let (x, e, g) = ctx.scoped("a sum of networks' energies", || {
            (
                ctx.storage_buffer("points", bytemuck::cast_slice(&xs[start * d..(start + m) * d])),
                ctx.zeroed_storage_buffer("energies", 4 * m as u64),
                ctx.zeroed_storage_buffer("gradients", 4 * (m * d) as u64),
            )
        })?;
        let chunk = max_chunk(ctx, terms, 4096);
        let sum = GpuNetSum::new(&kernels, terms, chunk, m, Slice::whole(&x), Slice::whole(&e), Slice::whole(&g))?;
        ctx.submit_pass("a sum of networks' energies", |p| sum.record(p))?;
        let out = ctx.read_buffers(&[(&e, 4 * m as u64), (&g, 4 * (m * d) as u64)])?;
        energies.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[0]));
        grads.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[1]));
    }
    Ok((energies, grads))
}
