//! The roofline model of training steps (`ebm bench --suite train`): FLOPs and bytes of one
//! whole step of B points, as the GPU trainers run it. Same conventions as the parent module.

use super::{
    Cost, F, L2_BYTES, PHILOX_OPS, act_flops, mlp_flops, net_pass, normals, tiled_eval_traffic, tiled_scratch, uniform4,
};
use crate::nn::mlp::MlpView;
use crate::nn::{Network, NetworkInternals};
use crate::train::Loss;

/// A training row: the network, the batch, the Langevin steps of a replay loss, the loss, and
/// whether the MLP trainer's Langevin phase runs tiled.
#[derive(Clone, Copy)]
pub struct TrainRun<'a> {
    pub net: &'a Network,
    pub batch: usize,
    pub langevin_steps: u32,
    pub loss: Loss,
    pub tiled: bool,
}

/// One training step, as the GPU runs it: score matching through the layer kernels' jets,
/// MLP-shaped networks with the fused MLP trainer (shaders/train/train.wgsl), other networks with the
/// layer-kernel trainer (shaders/train/train_layered.wgsl around network passes).
pub fn train_step(run: &TrainRun) -> Cost {
    if run.loss.is_score_matching() {
        return score_step(run);
    }
    let k = if run.loss.samples_negatives() { run.langevin_steps } else { 0 };
    match run.net.as_mlp() {
        Some(m) => mlp_trainer_step(&m, run.batch, k, run.loss == Loss::Nce, run.tiled),
        None => layered_contrastive_step(run.net, run.batch, k, run.loss == Loss::Nce),
    }
}

/// Per parameter: the gradient norm (2), clipping, weight decay and Adam (17,
/// shaders/common/train_step.wgsl); reads the parameter, both moments and the gradient (twice),
/// writes the parameter and both moments.
fn optimizer(params: usize) -> Cost {
    Cost::new(19.0 * params as f64, F * 8.0 * params as f64)
}

/// Per pair of the contrastive losses (`loss_weights`): the pair's weights, loss and
/// regulariser (about 20), the negative's radius (2 d + 1); NCE adds the two noise log
/// densities (7 d each) and the sigmoids and softpluses (about 30). Reads both energies, the
/// negative and its reset flag (NCE: both points), writes two weights.
fn loss_weights(d: f64, nce: bool) -> Cost {
    let flops = 21.0 + 2.0 * d + if nce { 14.0 * d + 30.0 } else { 0.0 };
    Cost::new(flops, F * (2.0 + d + 1.0 + 2.0 + if nce { 2.0 * d } else { 0.0 }))
}

/// The MLP trainer (src/train/gpu.rs `MlpTrainer`), one step of B points:
/// - `negatives_langevin` (replay losses): per chain its replay slot read, one `uniform4` for
///   the reset test, K steps of the fused network (or the tiled kernel, with its scratch) and
///   clamp(x - h g + s xi) (5 per dimension), the slot and the negative written;
/// - or `negatives_noise` (NCE): mean + std xi per dimension;
/// - `forward_backward` over 2B points: each positive's Philox draw of its data row, the
///   tape pass (forward, activations and slopes, back to the first hidden layer), the tape
///   written;
/// - `loss_weights`; `param_grads` (per weight 3 FLOPs per point, per bias 2, over the 2B
///   points: reads the tape and the weights once); the gradient norm and the optimizer.
fn mlp_trainer_step(m: &MlpView<'_>, b: usize, k: u32, nce: bool, tiled: bool) -> Cost {
    let dims = m.dims();
    let (d, bf, kf) = (dims[0] as f64, b as f64, k as f64);
    let n_w: usize = m.layers().iter().map(|l| l.weight.len()).sum();
    let n_b: usize = m.layers().iter().map(|l| l.bias.len()).sum();
    let weights = F * (n_w + n_b) as f64;
    let mut cost = Cost::default();
    if k > 0 {
        let eval = mlp_flops(&dims, m.activation(), !tiled);
        let mut chain = Cost::new(kf * (eval + 5.0 * d), F * (3.0 * d + 1.0)) + normals(dims[0]) * kf + uniform4();
        if tiled {
            let scratch = F * tiled_scratch(&dims) as f64;
            chain += if bf * scratch + weights <= L2_BYTES {
                Cost::new(0.0, scratch)
            } else {
                Cost::new(0.0, F * kf * (tiled_eval_traffic(&dims) + 3.0 * d))
            };
        }
        cost += chain * bf + Cost::new(0.0, weights + F * 2.0 * d);
    } else {
        cost += (Cost::new(2.0 * d, F * (d + 1.0)) + normals(dims[0])) * bf + Cost::new(0.0, F * 2.0 * d);
    }
    let hidden = dims.len() - 2;
    let (_, _, both) = act_flops(m.activation());
    let mut tape: f64 = dims.windows(2).map(|w| 2.0 * (w[0] * w[1]) as f64).sum();
    tape += dims[1..=hidden].iter().map(|&w| both * w as f64).sum::<f64>();
    if hidden > 0 {
        tape += 2.0 * dims[hidden] as f64;
        tape += (1..hidden).map(|k| (2 * dims[k] * dims[k + 1] + dims[k]) as f64).sum::<f64>();
    }
    let tape_stride = dims[..dims.len() - 1].iter().sum::<usize>() + dims[1..=hidden].iter().sum::<usize>();
    let ts = tape_stride as f64;
    cost += Cost::new(2.0 * bf * tape, F * 2.0 * bf * (d + ts + 1.0) + weights) + Cost::rng(PHILOX_OPS + 18.0) * bf;
    cost += loss_weights(d, nce) * bf;
    cost += Cost::new(2.0 * bf * (3.0 * n_w as f64 + 2.0 * n_b as f64), F * 2.0 * bf * (ts + 1.0) + weights);
    cost + optimizer(n_w + n_b + 1)
}

/// The layer-kernel trainer's contrastive step (src/train/layered.rs, `Passes::Contrastive`):
/// `negatives_start` (a `uniform4` per chain, its replay slot read and copied), K times a
/// network pass over the B negatives (energy and input gradient) and `langevin_step` (one
/// `normal4` per 4 coordinates, 5 FLOPs per coordinate; reads x and g, writes x),
/// `negatives_store`; or NCE's noise; `positives` (a Philox draw per row, the row copied); the
/// loss pass over 2B points with parameter gradients; `loss_weights`; `scale_output_grads`;
/// the gradient norm and the optimizer.
fn layered_contrastive_step(net: &Network, b: usize, k: u32, nce: bool) -> Cost {
    let (d, bf) = (net.input_dim() as f64, b as f64);
    let mut cost = Cost::default();
    if k > 0 {
        let step = net_pass(net, b, true, false) + (Cost::new(5.0 * d, F * 3.0 * d) + normals(net.input_dim())) * bf;
        cost += (uniform4() + Cost::new(0.0, F * (2.0 * d + 1.0))) * bf;
        cost += step * k as f64 + Cost::new(0.0, F * 2.0 * d * k as f64);
        cost += Cost::new(0.0, F * 2.0 * d * bf);
    } else {
        cost += (Cost::new(2.0 * d, F * (d + 1.0)) + normals(net.input_dim())) * bf;
    }
    cost += (Cost::rng(PHILOX_OPS + 18.0) + Cost::new(0.0, F * 2.0 * d)) * bf;
    cost += net_pass(net, 2 * b, false, true);
    cost += loss_weights(d, nce) * bf;
    let outputs = net.outputs as f64;
    cost += Cost::new(2.0 * bf * outputs, F * 2.0 * bf * (2.0 * outputs + 1.0));
    cost + optimizer(net.param_count() + 1)
}

/// Score matching through the layer kernels (`Passes::Score`): `score_points` (a Philox draw per
/// point, its data row, DSM's noise: d normals and x + sigma eps), for DSM the network pass at
/// x~ (energy and input gradient) and `dsm_directions` (6 FLOPs per coordinate), then the jet
/// pass with parameter gradients, counted as a network pass over (order + 1) B rows (the
/// activation jets' extra derivatives are left out), the gradient norm and the optimizer.
fn score_step(run: &TrainRun) -> Cost {
    let net = run.net;
    let (d, bf) = (net.input_dim() as f64, run.batch as f64);
    let dsm = matches!(run.loss, Loss::Dsm { .. });
    let order = if dsm { 1 } else { 2 };
    let mut cost = (Cost::rng(PHILOX_OPS + 18.0) + normals(net.input_dim()) + Cost::new(2.0 * d, F * 3.0 * d)) * bf;
    if dsm {
        cost += net_pass(net, run.batch, true, false) + Cost::new(6.0 * d, F * 3.0 * d) * bf;
    }
    cost += net_pass(net, (order + 1) * run.batch, false, true);
    cost + optimizer(net.param_count() + 1)
}
