//! GPU launcher for `shaders/energy/energy_eval.wgsl`: energies and gradients of a batch of points.
//! CPU twin: [`Energy::energy_grad`].

use super::{Energy, EnergyInternals};
use crate::gpu::launch::{self, split};
use crate::gpu::{ContextInternals, GpuContext};
use crate::nn::NetworkInternals;
use crate::{Error, Result};
use std::sync::Arc;

/// Energies [n] and gradients [n, dim] at `points` ([n, dim] row-major). MLP-shaped networks
/// are inlined like the analytic terms; a lone network of layer kernels runs through them
/// ([`crate::nn::gpu_net::energy_grad_batch`]), and a sum holding one runs as a sum of
/// networks ([`crate::nn::gpu_sum`]; other terms beside it are refused).
pub fn energy_grad_batch(ctx: &Arc<GpuContext>, energy: &Energy, points: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    if let Energy::Net(net) = energy
        && net.as_mlp().is_none()
    {
        return crate::nn::gpu_net::energy_grad_batch(ctx, net, points);
    }
    if energy.has_layered_net() {
        energy.validate()?;
        return crate::nn::gpu_sum::energy_grad_batch(ctx, &energy.network_terms()?, points);
    }
    energy.validate()?;
    let dim = energy.dim();
    if !points.len().is_multiple_of(dim) {
        return Err(Error::invalid(
            "points",
            format!("{} values is not a multiple of the dimension {dim}", points.len()),
        ));
    }
    let n = points.len() / dim;
    ctx.check_loop_budget("one energy and gradient", energy.loop_iterations() + 3 * dim as u64)?;
    let wgsl = crate::gpu::shader::assemble("energy/energy_eval.wgsl", &[("energy", &energy.wgsl_module())])?;
    let kernel = ctx.kernel(&format!("energy_eval[{}; d={dim}]", energy.kind()), &wgsl, "main")?;
    let limits = ctx.limits();
    let max_points = ((limits.max_storage_buffer_binding_size / (dim as u64 * 4)) as usize)
        .min(limits.max_compute_workgroups_per_dimension as usize * launch::WG as usize);
    let params = energy.pack_params();
    let (mut energies, mut grads) = (Vec::with_capacity(n), Vec::with_capacity(n * dim));
    for (first, count) in split(n, max_points) {
        let (e_buf, g_buf) = ctx.scoped("evaluating energies", || -> Result<_> {
            let params_buf = ctx.storage_buffer("energy params", bytemuck::cast_slice(&params));
            let points_buf =
                ctx.storage_buffer("points", bytemuck::cast_slice(&points[first * dim..(first + count) * dim]));
            let e_buf = ctx.zeroed_storage_buffer("energies", count as u64 * 4);
            let g_buf = ctx.zeroed_storage_buffer("gradients", (count * dim) as u64 * 4);
            let group = launch::bind_buffers(ctx, &kernel, &[&params_buf, &points_buf, &e_buf, &g_buf]);
            ctx.submit_pass("evaluating energies", |pass| {
                launch::record(pass, &kernel, &group, None, [(count as u32).div_ceil(launch::WG), 1, 1])
            })?;
            Ok((e_buf, g_buf))
        })??;
        let out = ctx.read_buffers(&[(&e_buf, count as u64 * 4), (&g_buf, (count * dim) as u64 * 4)])?;
        energies.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[0]));
        grads.extend(bytemuck::pod_collect_to_vec::<u8, f32>(&out[1]));
    }
    Ok((energies, grads))
}
