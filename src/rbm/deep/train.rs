//! Greedy layer-wise pre-training (both kinds) and the DBM's PCD training with a mean-field
//! positive phase (Salakhutdinov & Hinton 2009).
//!
//! Pre-training: layer 1 is an RBM trained on the data by the RBM executor (CD-k or PCD-k);
//! layer k + 1 is an RBM trained the same way on one Bernoulli draw of layer k's hidden units
//! for every training row. A DBN is that stack. A DBM is composed from it by
//! [`compose_dbm`]: plain stacked RBMs with halved weights (not the doubled-input RBMs of
//! Salakhutdinov & Hinton), since in the DBM h1 hears both v and h2 where each RBM alone
//! gave it one of them.
//!
//! DBM training, per batch: the positive statistics are the mean-field posterior of the batch
//! after `mean_field` fixed-point sweeps ([`super::cpu::mean_field`]), the negative ones the
//! states of `batch` persistent chains after k block Gibbs steps ([`super::cpu::gibbs_step`]);
//! each layer is then updated by the RBM update ([`crate::rbm::cpu::update`]) with its
//! momentum and weight decay. CPU executor; the Gibbs counter continues across batches.

use super::cpu::{Chains, gibbs_step, mean_field, noise_rows};
use super::{Deep, Kind};
use crate::rbm::cpu::{UpdateParams, hidden_step, transpose_into, transposed, update};
use crate::rbm::eval::Executor;
use crate::rbm::train::{self, EpochReport, Method, TrainConfig, TrainState};
use crate::rbm::{Rbm, Visible};
use crate::rng::{self, Stream};
use crate::{Error, Result};

/// Trains the stack greedily: `sizes` (visible first), each layer with `config` (its epochs,
/// batch, method, learning rate; layer k seeded by config.seed + k); `report(layer, epoch,
/// report)` after every epoch. Returns the layers bottom first.
pub fn pretrain(
    exec: &Executor,
    sizes: &[usize],
    data: &[f32],
    config: &TrainConfig,
    mut report: impl FnMut(usize, u32, &EpochReport),
) -> Result<Vec<Rbm>> {
    super::check_layer_sizes(sizes)?;
    config.validate()?;
    let mut input = data.to_vec();
    let mut layers = Vec::new();
    for (k, w) in sizes.windows(2).enumerate() {
        let cfg = TrainConfig { seed: config.seed.wrapping_add(k as u64), ..config.clone() };
        let rows = input.len() / w[0];
        let rbm = Rbm::random(w[0], w[1], Visible::Bernoulli, 0.01, cfg.seed)?;
        let state = TrainState::new(rbm, &cfg, &input)?;
        let mut trainer = exec.trainer(&cfg, state, &input)?;
        for epoch in 0..cfg.epochs {
            let r = train::run_epoch(trainer.as_mut(), &cfg, rows, epoch, |_, _| {})?;
            report(k + 1, epoch + 1, &r);
        }
        let rbm = trainer.state()?.rbm;
        rbm.check_finite()?;
        if k + 2 < sizes.len() {
            // One draw of the hidden units for every row: the next layer's data.
            let (mut p, mut s) = (vec![0.0f32; rows * w[1]], vec![0.0f32; rows * w[1]]);
            hidden_step(&rbm, &input, cfg.seed ^ PROPAGATE_SEED, k as u32, 0, &mut p, &mut s);
            input = s;
        }
        layers.push(rbm);
    }
    Ok(layers)
}

/// Mixed into the seed of the draws that carry the data up the stack.
const PROPAGATE_SEED: u64 = 0x5DEE_CE66_D1CE_4E5B;

/// A DBM from two stacked RBMs: W1 / 2 and W2 / 2, visible bias b1, h1 bias (c1 + b2) / 2,
/// h2 bias c2.
pub fn compose_dbm(layers: &[Rbm]) -> Result<Deep> {
    let [l1, l2] = layers else {
        return Err(Error::invalid("layers", format!("a DBM has two hidden layers, got {}", layers.len())));
    };
    let half = |x: &[f32]| x.iter().map(|w| 0.5 * w).collect::<Vec<f32>>();
    let c1: Vec<f32> = l1.c().iter().zip(l2.b()).map(|(a, b)| 0.5 * (a + b)).collect();
    let a = Rbm::from_parts(&half(l1.w()), l1.b(), &c1, Visible::Bernoulli)?;
    let b = Rbm::from_parts(&half(l2.w()), &vec![0.0; l2.n_vis], l2.c(), Visible::Bernoulli)?;
    Deep::new(Kind::Dbm, vec![a, b])
}

/// The DBM trainer's settings: the RBM training settings (method PCD-k: k Gibbs steps of
/// `batch` persistent chains per batch) and the mean-field sweeps of the positive phase.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DbmConfig {
    pub train: TrainConfig,
    pub mean_field: u32,
}

impl DbmConfig {
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if !matches!(self.train.method, Method::Pcd(_)) {
            return Err(Error::invalid("DBM training", "uses persistent chains (PCD-k), not CD"));
        }
        if self.mean_field == 0 || self.mean_field > 1000 {
            return Err(Error::invalid(
                "mean-field iterations",
                format!("must be in 1..=1000, got {}", self.mean_field),
            ));
        }
        Ok(())
    }

    fn k(&self) -> u32 {
        match self.train.method {
            Method::Cd(k) | Method::Pcd(k) => k,
        }
    }
}

/// A DBM in training: parameters, momentum (laid out like each layer's theta), persistent
/// chains, the Gibbs step counter and completed epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct DbmState {
    pub dbm: Deep,
    pub velocity: [Vec<f32>; 2],
    pub chains: Chains,
    pub step: u32,
    pub epoch: u32,
}

/// Where the persistent chains start.
#[derive(Clone, Copy, Debug)]
pub enum ChainStart<'a> {
    /// Bernoulli(1/2) h1 states.
    Noise,
    /// One Bernoulli draw of h1 from the mean-field posterior of each of the first epoch's first
    /// `batch` training rows (this slice, [rows, visible units]): chains start in the data's
    /// modes rather than wherever block Gibbs from noise falls first (on colour MNIST, all
    /// black backgrounds).
    Data(&'a [f32]),
}

impl DbmState {
    /// Fresh momentum; `batch` chains started as `start` says.
    pub fn new(dbm: Deep, config: &DbmConfig, start: ChainStart) -> Result<Self> {
        config.validate()?;
        let (l1, l2) = dbm.dbm_layers()?;
        let (seed, batch) = (config.train.seed, config.train.batch);
        let h1 = match start {
            ChainStart::Noise => noise_rows(seed, 0, batch, l1.n_hid),
            ChainStart::Data(data) => {
                let rows = l1.check_rows(data, "training data")?;
                if rows == 0 {
                    return Err(Error::invalid("training data", "has no rows"));
                }
                let order = train::epoch_order(rows, seed, 0);
                let mut v0 = Vec::with_capacity(batch * l1.n_vis);
                for &r in order.iter().cycle().take(batch) {
                    v0.extend_from_slice(&data[r as usize * l1.n_vis..(r as usize + 1) * l1.n_vis]);
                }
                let wt1 = transposed(l1.w(), l1.n_hid, l1.n_vis);
                let wt2 = transposed(l2.w(), l2.n_hid, l2.n_vis);
                let (mut h1, _) = mean_field(l1, &wt1, l2, &wt2, &v0, config.mean_field);
                h1.chunks_mut(l1.n_hid).enumerate().for_each(|(r, row)| {
                    let mut u = vec![0.0f32; row.len()];
                    rng::fill_uniforms(seed, r as u32, 1, Stream::Init, &mut u);
                    row.iter_mut().zip(&u).for_each(|(h, u)| *h = (*u < *h) as u32 as f32);
                });
                h1
            }
        };
        let chains = Chains::from_h1(&h1, [l1.n_vis, l1.n_hid, l2.n_hid]);
        let velocity = [vec![0.0; l1.theta.len()], vec![0.0; l2.theta.len()]];
        Ok(Self { dbm, velocity, chains, step: 0, epoch: 0 })
    }
}

/// One epoch of DBM training (0-based `epoch`); `progress(done, total)` after each batch.
/// The report's error is the mean over rows of |v - E[v | mu1]|^2 at the batch's mean field.
pub fn run_dbm_epoch(
    state: &mut DbmState,
    config: &DbmConfig,
    data: &[f32],
    epoch: u32,
    mut progress: impl FnMut(usize, usize),
) -> Result<EpochReport> {
    config.validate()?;
    let start = std::time::Instant::now();
    let nv = state.dbm.n_vis();
    let rows = state.dbm.layers[0].check_rows(data, "training data")?;
    if rows == 0 {
        return Err(Error::invalid("training data", "has no rows"));
    }
    let cfg = &config.train;
    let order = train::epoch_order(rows, cfg.seed, epoch);
    let batches = train::epoch_batches(cfg, rows, epoch);
    let (mut wt1, mut wt2, mut grad, mut v0) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut err = 0.0f64;
    for (b, batch) in batches.iter().enumerate() {
        v0.clear();
        for &r in &order[batch.start..batch.start + batch.rows] {
            v0.extend_from_slice(&data[r as usize * nv..(r as usize + 1) * nv]);
        }
        let [l1, l2] = &mut state.dbm.layers[..] else { unreachable!("validated: two layers") };
        transpose_into(l1.w(), l1.n_hid, l1.n_vis, &mut wt1);
        transpose_into(l2.w(), l2.n_hid, l2.n_vis, &mut wt2);
        let (mu1, mu2) = mean_field(l1, &wt1, l2, &wt2, &v0, config.mean_field);
        let recon = super::cpu::affine(&mu1, l1.n_hid, l1.w(), nv, l1.b());
        err += v0.iter().zip(&recon).map(|(&x, &a)| (x - crate::rbm::sigmoid(a)).powi(2) as f64).sum::<f64>();
        for _ in 0..config.k() {
            gibbs_step(l1, &wt1, l2, &wt2, &mut state.chains, cfg.seed, state.step, 0);
            state.step += 1;
        }
        let u = UpdateParams { lr: batch.lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay };
        let ch = &state.chains;
        update(l1, &mut state.velocity[0], &v0, &mu1, &ch.v, &ch.h1, u, &mut grad);
        update(l2, &mut state.velocity[1], &mu1, &mu2, &ch.h1, &ch.h2, u, &mut grad);
        // Layer 2's visible bias is not a DBM parameter (h1's bias is layer 1's c).
        l2.b_mut().fill(0.0);
        let o = l2.n_hid * l2.n_vis;
        state.velocity[1][o..o + l2.n_vis].fill(0.0);
        progress(b + 1, batches.len());
    }
    for (k, l) in state.dbm.layers.iter().enumerate() {
        l.check_finite()
            .map_err(|e| Error::invalid("training", format!("epoch {}: layer {}: {e}", epoch + 1, k + 1)))?;
    }
    state.epoch = epoch + 1;
    Ok(EpochReport { recon_error: err / rows as f64, seconds: start.elapsed().as_secs_f64() })
}
