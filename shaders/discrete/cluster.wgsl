// Fortuin–Kasteleyn cluster steps (Swendsen–Wang, Wolff) of many chains of a ferromagnetic
// Ising or Potts model. CPU twin: src/discrete/cluster.rs (same edge numbering and Philox
// counters, so the same states bit for bit).
//
// One step, per chain (gid.y): `reset` makes every site its own root; `bond` joins the two
// sites of every edge that shares a label and draws under its threshold, by a lock-free
// union-find that always hooks the larger root under the smaller, so a cluster's root ends as
// its smallest site whatever order the unions land in; Wolff's `pick` then draws the seed
// site and its new label; `relabel` gives every site its cluster's new label (Swendsen–Wang:
// drawn from the root's counter; Wolff: only the seed's cluster changes). States are one
// label per u32, in site order, one chain after another.
#import common/rng.wgsl

struct Params {
    seed: vec2<u32>,
    chains: u32,
    sites: u32,
    edges: u32,
    step: u32,
    chain_offset: u32,
    q: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> states: array<u32>;
@group(0) @binding(2) var<storage, read_write> parent: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> ends: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> thresholds: array<u32>;
// Per chain: Wolff's cluster root, its new label, and the sites flipped since the host zeroed it.
@group(0) @binding(5) var<storage, read_write> wolff: array<atomic<u32>>;

const WG: u32 = 64u;

// The root of site i of the chain whose sites start at `base`, halving the path on the way
// (a site's parent only ever moves to an ancestor, so concurrent halving is safe).
fn find(base: u32, i: u32) -> u32 {
    var x = i;
    var up = atomicLoad(&parent[base + x]);
    while up != x {
        let upup = atomicLoad(&parent[base + up]);
        if upup != up {
            atomicStore(&parent[base + x], upup);
        }
        x = up;
        up = atomicLoad(&parent[base + x]);
    }
    return x;
}

fn unite(base: u32, a: u32, b: u32) {
    var ra = find(base, a);
    var rb = find(base, b);
    loop {
        if ra == rb {
            return;
        }
        let lo = min(ra, rb);
        let hi = max(ra, rb);
        if atomicCompareExchangeWeak(&parent[base + hi], hi, lo).exchanged {
            return;
        }
        // `hi` was hooked meanwhile (or the weak exchange failed): find both roots again.
        ra = find(base, hi);
        rb = find(base, lo);
    }
}

// A new label from 32 random bits: uniform among all Q (Swendsen–Wang) or among the others.
fn new_label(old: u32, bits: u32, others_only: bool) -> u32 {
    let top = bits >> 8u;
    if others_only {
        return (old + 1u + ((top * (p.q - 1u)) >> 24u)) % p.q;
    }
    return (top * p.q) >> 24u;
}

@compute @workgroup_size(WG)
fn reset(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.sites || gid.y >= p.chains {
        return;
    }
    atomicStore(&parent[gid.y * p.sites + gid.x], gid.x);
}

// Edges 4 gid.x .. 4 gid.x + 3 of chain gid.y: one Philox draw, a lane each.
@compute @workgroup_size(WG)
fn bond(@builtin(global_invocation_id) gid: vec3<u32>) {
    let first = 4u * gid.x;
    if first >= p.edges || gid.y >= p.chains {
        return;
    }
    let base = gid.y * p.sites;
    let bits = philox4x32_10(vec4<u32>(p.chain_offset + gid.y, 2u * p.step, STREAM_CLUSTER, gid.x), p.seed);
    for (var l = 0u; l < 4u && first + l < p.edges; l++) {
        let e = first + l;
        let ij = ends[e];
        if states[base + ij.x] == states[base + ij.y] && (bits[l] >> 8u) < thresholds[e] {
            unite(base, ij.x, ij.y);
        }
    }
}

// Wolff's seed site and new label for chain gid.x.
@compute @workgroup_size(WG)
fn pick(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if c >= p.chains {
        return;
    }
    let base = c * p.sites;
    let draw = philox4x32_10(vec4<u32>(p.chain_offset + c, 2u * p.step + 1u, STREAM_CLUSTER, 0xffffffffu), p.seed);
    let start = mulhilo(draw.x, p.sites).x;
    atomicStore(&wolff[3u * c], find(base, start));
    atomicStore(&wolff[3u * c + 1u], new_label(states[base + start], draw.y, true));
}

var<workgroup> flipped: atomic<u32>;

// Site gid.x of chain gid.y takes its cluster's label.
@compute @workgroup_size(WG)
fn relabel_swendsen_wang(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.sites || gid.y >= p.chains {
        return;
    }
    let root = find(gid.y * p.sites, gid.x);
    let bits = philox4x32_10(vec4<u32>(p.chain_offset + gid.y, 2u * p.step + 1u, STREAM_CLUSTER, root / 4u), p.seed);
    states[gid.y * p.sites + gid.x] = new_label(0u, bits[root % 4u], false);
}

@compute @workgroup_size(WG)
fn relabel_wolff(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if li == 0u {
        atomicStore(&flipped, 0u);
    }
    workgroupBarrier();
    let c = gid.y;
    if gid.x < p.sites && c < p.chains && find(c * p.sites, gid.x) == atomicLoad(&wolff[3u * c]) {
        states[c * p.sites + gid.x] = atomicLoad(&wolff[3u * c + 1u]);
        atomicAdd(&flipped, 1u);
    }
    workgroupBarrier();
    if li == 0u && c < p.chains {
        let n = atomicLoad(&flipped);
        if n > 0u {
            atomicAdd(&wolff[3u * c + 2u], n);
        }
    }
}
