// Exact log Z of an RBM by enumerating the hidden layer (the visible layer sums out in closed
// form). CPU twin: src/rbm/logz.rs `log_z_cpu`.
//
// log Z = log sum_h exp(t(h)),  t(h) = c.h + sum_i softplus(a_i)   (Bernoulli visibles)
//                               t(h) = c.h + |a|^2 / 2 (+ n_vis/2 log 2pi on the host)  (Gaussian)
// with a = b + W^T h. Invocation t owns the configurations whose hidden units low_bits.. are the
// bits of t; it walks its 2^low_bits low configurations in Gray-code order, so each step adds or
// subtracts one row of W (O(n_vis) instead of O(n_vis n_hid)), and keeps a running log-sum-exp
// (max m, sum s of exp(t - m)). `logz_reduce` combines the partials in one workgroup.
#import common/activations.wgsl

struct Params {
    n_vis: u32,
    n_hid: u32,
    low_bits: u32,
    threads: u32,
    gaussian: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
// [threads, n_vis]: each invocation's visible pre-activations a.
@group(0) @binding(2) var<storage, read_write> act: array<f32>;
// [threads + 1] pairs (m, s); the last pair receives the total.
@group(0) @binding(3) var<storage, read_write> partials: array<vec2<f32>>;

const NEG_BIG: f32 = -3.0e38;


fn lse_add(acc: vec2<f32>, t: f32) -> vec2<f32> {
    if t > acc.x {
        return vec2<f32>(t, acc.y * exp(acc.x - t) + 1.0);
    }
    return vec2<f32>(acc.x, acc.y + exp(t - acc.x));
}

fn lse_merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(64)
fn logz_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if t >= p.threads {
        return;
    }
    let nv = p.n_vis;
    let nh = p.n_hid;
    let a0 = t * nv;
    let c0 = nh * nv + nv;
    var ch = 0.0;
    for (var i = 0u; i < nv; i++) {
        act[a0 + i] = theta[nh * nv + i];
    }
    for (var j = p.low_bits; j < nh; j++) {
        if ((t >> (j - p.low_bits)) & 1u) != 0u {
            ch += theta[c0 + j];
            for (var i = 0u; i < nv; i++) {
                act[a0 + i] += theta[j * nv + i];
            }
        }
    }
    var acc = vec2<f32>(NEG_BIG, 0.0);
    let count = 1u << p.low_bits;
    for (var g = 0u; g < count; g++) {
        if g > 0u {
            let bit = countTrailingZeros(g);
            let on = ((g ^ (g >> 1u)) >> bit) & 1u;
            let sign = select(-1.0, 1.0, on != 0u);
            ch += sign * theta[c0 + bit];
            for (var i = 0u; i < nv; i++) {
                act[a0 + i] += sign * theta[bit * nv + i];
            }
        }
        var term = ch;
        for (var i = 0u; i < nv; i++) {
            let a = act[a0 + i];
            if p.gaussian != 0u {
                term += 0.5 * a * a;
            } else {
                term += softplus(a);
            }
        }
        acc = lse_add(acc, term);
    }
    partials[t] = acc;
}

var<workgroup> shared_acc: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn logz_reduce(@builtin(local_invocation_index) l: u32) {
    var acc = vec2<f32>(NEG_BIG, 0.0);
    for (var k = l; k < p.threads; k += 256u) {
        acc = lse_merge(acc, partials[k]);
    }
    shared_acc[l] = acc;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if l < half {
            shared_acc[l] = lse_merge(shared_acc[l], shared_acc[l + half]);
        }
        workgroupBarrier();
    }
    if l == 0u {
        partials[p.threads] = shared_acc[0];
    }
}
