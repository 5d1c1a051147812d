// One colour class of a discrete model's sweep (block Gibbs or Metropolis), for every chain.
// CPU twin: src/discrete/cpu.rs with the site rule `Rules::update_site` (src/discrete/rules.rs).
//
// States are bytes, four to a u32 word, in the colour-major layout of src/discrete/graph.rs:
// one invocation updates the (up to) four sites of word `first_word + gid.x` of chain gid.y.
// No site of a class neighbours another, so the class updates at once from the others'
// states. Randomness: Philox counter (chain_offset + chain, sweep, STREAM_GIBBS, word), lane
// = site within the word; Potts Metropolis tests acceptance with (.., STREAM_ACCEPT, word).
// The rule's shape (Q, EXACT, METROPOLIS, ZERO_T) comes from the generated module
// discrete/config.wgsl.
#import common/rng.wgsl
#import discrete/config.wgsl

struct Params {
    seed: vec2<u32>,
    chains: u32,
    words: u32,
    first_word: u32,
    class_words: u32,
    class_sites: u32,
    sweep: u32,
    chain_offset: u32,
    beta: f32,
    max_degree: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> states: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> neighbours: array<u32>;
@group(0) @binding(4) var<storage, read> couplings: array<f32>;
@group(0) @binding(5) var<storage, read> field: array<f32>;
@group(0) @binding(6) var<storage, read> table: array<u32>;

const INV_ONE: f32 = 1.0 / 16777216.0;

// The byte at position n of the chain whose words start at `base`.
fn state_at(base: u32, n: u32) -> u32 {
    return (states[base + (n >> 2u)] >> (8u * (n & 3u))) & 0xffu;
}

fn ising_site(base: u32, pos: u32, current: u32, top24: u32) -> u32 {
    let d = i32(p.max_degree);
    if EXACT {
        var m = 0i;
        for (var e = offsets[pos]; e < offsets[pos + 1u]; e++) {
            m += 2i * i32(state_at(base, neighbours[e])) - 1i;
        }
        if METROPOLIS {
            let t = table[u32(i32(current) * (2i * d + 1i) + m + d)];
            return current ^ select(0u, 1u, top24 < t);
        }
        return select(0u, 1u, top24 < table[u32(m + d)]);
    }
    var acc = 0.0;
    for (var e = offsets[pos]; e < offsets[pos + 1u]; e++) {
        let c = couplings[e];
        acc += select(-c, c, state_at(base, neighbours[e]) == 1u);
    }
    let h = acc + field[pos];
    if ZERO_T {
        return select(select(current, 0u, h < 0.0), 1u, h > 0.0);
    }
    let u = f32(top24) * INV_ONE;
    if METROPOLIS {
        let s = select(-1.0, 1.0, current == 1u);
        return current ^ select(0u, 1u, u < exp(-2.0 * p.beta * s * h));
    }
    return select(0u, 1u, u < 1.0 / (1.0 + exp(-2.0 * p.beta * h)));
}

fn potts_site(base: u32, pos: u32, current: u32, top24: u32, accept24: u32) -> u32 {
    let d = i32(p.max_degree);
    var counts: array<u32, Q>;
    var sums: array<f32, Q>;
    for (var e = offsets[pos]; e < offsets[pos + 1u]; e++) {
        let k = state_at(base, neighbours[e]);
        counts[k] += 1u;
        sums[k] += couplings[e];
    }
    if METROPOLIS {
        let proposed = (current + 1u + ((top24 * (Q - 1u)) >> 24u)) % Q;
        var accept: bool;
        if EXACT {
            let dn = i32(counts[proposed]) - i32(counts[current]);
            accept = accept24 < table[u32(dn + d)];
        } else {
            accept = f32(accept24) * INV_ONE < exp(p.beta * (sums[proposed] - sums[current]));
        }
        return select(current, proposed, accept);
    }
    var w: array<f32, Q>;
    if EXACT {
        for (var k = 0u; k < Q; k++) {
            w[k] = bitcast<f32>(table[counts[k]]);
        }
    } else {
        var top = sums[0];
        for (var k = 1u; k < Q; k++) {
            top = max(top, sums[k]);
        }
        for (var k = 0u; k < Q; k++) {
            w[k] = exp(p.beta * (sums[k] - top));
        }
    }
    var total = 0.0;
    for (var k = 0u; k < Q; k++) {
        total += w[k];
    }
    let x = f32(top24) * INV_ONE * total;
    var cum = 0.0;
    for (var k = 0u; k < Q - 1u; k++) {
        cum += w[k];
        if x < cum {
            return k;
        }
    }
    return Q - 1u;
}

@compute @workgroup_size(64)
fn sweep_class(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    let c = gid.y;
    if k >= p.class_words || c >= p.chains {
        return;
    }
    let base = c * p.words;
    let word = p.first_word + k;
    let chain = p.chain_offset + c;
    let bits = philox4x32_10(vec4<u32>(chain, p.sweep, STREAM_GIBBS, word), p.seed);
    var accept = vec4<u32>(0u);
    if Q > 2u && METROPOLIS {
        accept = philox4x32_10(vec4<u32>(chain, p.sweep, STREAM_ACCEPT, word), p.seed);
    }
    var out = states[base + word];
    for (var lane = 0u; lane < 4u; lane++) {
        if k * 4u + lane >= p.class_sites {
            break;
        }
        let current = (out >> (8u * lane)) & 0xffu;
        var new_state: u32;
        if Q == 2u {
            new_state = ising_site(base, word * 4u + lane, current, bits[lane] >> 8u);
        } else {
            new_state = potts_site(base, word * 4u + lane, current, bits[lane] >> 8u, accept[lane] >> 8u);
        }
        out = (out & ~(0xffu << (8u * lane))) | (new_state << (8u * lane));
    }
    states[base + word] = out;
}
