//! The roofline model of discrete models (`ebm bench --suite discrete`): FLOPs and bytes of one
//! site update, as the GPU kernels run it. Same conventions as the parent module; the integer
//! work of a table rule (neighbour sums, threshold lookups) is index arithmetic and not counted,
//! so a table sweep's FLOPs are its Philox draws.

use super::{Cost, L2_BYTES, PHILOX_OPS};
use crate::discrete::SpinModel;

/// One site update of a sweep (shaders/discrete/spins.wgsl `sweep_class`, one invocation per
/// word of four sites, one dispatch per colour class): a Philox call per word (Potts Metropolis
/// a second one for the acceptance), a float rule's per-neighbour add and per-label exp; bytes:
/// the site's byte read and written, the neighbours' bytes read once per dispatch, and the
/// graph (offsets, neighbours, couplings) read once per dispatch for all chains while it fits in
/// L2, else once per chain.
pub fn sweep_site(model: &SpinModel, metropolis: bool, exact: bool, chains: usize) -> Cost {
    let degree = model.graph.neighbours.len() as f64 / model.sites() as f64;
    let draws = if metropolis && model.q > 2 { 2.0 } else { 1.0 };
    let mut flops = draws * PHILOX_OPS / 4.0;
    let rng = flops;
    if !exact {
        let labels = if metropolis { 2.0 } else { model.q as f64 };
        flops += degree + 2.0 * labels;
    }
    let graph = 4.0 + (if exact { 4.0 } else { 8.0 }) * degree;
    let sharing = if graph * model.sites() as f64 <= L2_BYTES { chains as f64 } else { 1.0 };
    Cost { flops, rng, bytes: 3.0 + graph / sharing }
}

/// One site's share of a Swendsen–Wang step (shaders/discrete/cluster.wgsl): `reset` writes its
/// parent; `bond` draws a Philox call per four edges and reads each edge's ends, threshold, two
/// labels and (for a bond) two roots; `relabel` finds the root and draws a Philox call per site.
/// Parents and labels are u32s; a find is taken as two parent reads.
pub fn swendsen_wang_site(model: &SpinModel, chains: usize) -> Cost {
    let edges = model.graph.neighbours.len() as f64 / 2.0 / model.sites() as f64;
    let rng = PHILOX_OPS * (1.0 + edges / 4.0);
    let graph = 12.0 * edges;
    let sharing = if graph * model.sites() as f64 <= L2_BYTES { chains as f64 } else { 1.0 };
    let bytes = 4.0 + edges * (2.0 * 4.0 + 2.0 * 8.0) + graph / sharing + (8.0 + 4.0);
    Cost { flops: rng, rng, bytes }
}
