// The energy head of a network: from its outputs f [n, K] the energy of every point and
// dE/df, the start of the backward pass. CPU twin: `Head::energy_ref` (src/nn/reference.rs).
// kind 0: E = f; 1: E = -f; 2: E = -logsumexp f (JEM); 3: E = -f[class]; each times `weight`.
// `head_jet` below is the head of a jet pass (score matching, src/nn/gpu_jet.rs).

struct HeadParams {
    n: u32,
    k: u32,
    kind: u32,
    class_index: u32,
    f_off: u32,
    e_off: u32,
    d_off: u32,
    order: u32,             // head_jet: the jet's order (1 or 2)
    s1a: f32,               // head_jet: the seeds c = (0, s1a E' + s1b, s2)
    s1b: f32,
    s2: f32,
    weight: f32,            // head: E and dE/df times it (a term's weight in a sum of networks)
}

@group(0) @binding(0) var<uniform> hp: HeadParams;
@group(0) @binding(1) var<storage, read_write> f: array<f32>;
@group(0) @binding(2) var<storage, read_write> energies: array<f32>;
@group(0) @binding(3) var<storage, read_write> d_out: array<f32>;

@compute @workgroup_size(64)
fn head(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= hp.n {
        return;
    }
    let fb = hp.f_off + r * hp.k;
    let db = hp.d_off + r * hp.k;
    var e = 0.0;
    switch hp.kind {
        case 0u: {
            e = f[fb];
            d_out[db] = hp.weight;
        }
        case 1u: {
            e = -f[fb];
            d_out[db] = -hp.weight;
        }
        case 2u: {
            var m = f[fb];
            for (var y = 1u; y < hp.k; y++) {
                m = max(m, f[fb + y]);
            }
            var s = 0.0;
            for (var y = 0u; y < hp.k; y++) {
                s += exp(f[fb + y] - m);
            }
            for (var y = 0u; y < hp.k; y++) {
                d_out[db + y] = -hp.weight * (exp(f[fb + y] - m) / s);
            }
            e = -(m + log(s));
        }
        default: {
            for (var y = 0u; y < hp.k; y++) {
                d_out[db + y] = select(0.0, -hp.weight, y == hp.class_index);
            }
            e = -f[fb + hp.class_index];
        }
    }
    energies[hp.e_off + r] = hp.weight * e;
}

// The head's jet (CPU twin: `Head::jet`, src/nn/jet.rs): from the outputs' jet f, f', f'' (blocks of n
// rows of K from f_off; no f'' for order 1) the energy's jet (E, E', E'') of every point at
// e_off + 3 r, and the adjoints of f, f', f'' (blocks from d_off) for the seeds
// c = (0, s1a E' + s1b, s2) of the loss c·(E, E', E'').
@compute @workgroup_size(64)
fn head_jet(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if r >= hp.n {
        return;
    }
    let block = hp.n * hp.k;
    let f0 = hp.f_off + r * hp.k;
    let d0 = hp.d_off + r * hp.k;
    let second = hp.order == 2u;
    var e = vec3<f32>(0.0);
    if hp.kind == 2u {
        // p = softmax f; E = -lse f, E' = -p.f', E'' = -(f'^T J f' + p.f''), J = diag p - p p^T.
        var m = f[f0];
        for (var y = 1u; y < hp.k; y++) {
            m = max(m, f[f0 + y]);
        }
        var s = 0.0;
        for (var y = 0u; y < hp.k; y++) {
            s += exp(f[f0 + y] - m);
        }
        var m1 = 0.0;
        var m2 = 0.0;
        var q = 0.0;
        for (var y = 0u; y < hp.k; y++) {
            let p = exp(f[f0 + y] - m) / s;
            let v1 = f[f0 + block + y];
            m1 += p * v1;
            q += p * v1 * v1;
            if second {
                m2 += p * f[f0 + 2u * block + y];
            }
        }
        e = vec3<f32>(-(m + log(s)), -m1, -(q - m1 * m1 + m2));
        let c1 = hp.s1a * e.y + hp.s1b;
        for (var y = 0u; y < hp.k; y++) {
            let p = exp(f[f0 + y] - m) / s;
            let v1 = f[f0 + block + y];
            var v2 = 0.0;
            if second {
                v2 = f[f0 + 2u * block + y];
                d_out[d0 + 2u * block + y] = -hp.s2 * p;
            }
            let jf1 = p * (v1 - m1);
            let jf2 = p * (v2 - m2);
            let d_quad = p * (v1 * v1 - q) - 2.0 * m1 * jf1;
            d_out[d0 + block + y] = -c1 * p - hp.s2 * 2.0 * jf1;
            d_out[d0 + y] = -c1 * jf1 - hp.s2 * (d_quad + jf2);
        }
    } else {
        // E = sign f[index]: every derivative is the same component.
        var sign = -1.0;
        var index = hp.class_index;
        if hp.kind == 0u {
            sign = 1.0;
        }
        if hp.kind != 3u {
            index = 0u;
        }
        var v2 = 0.0;
        if second {
            v2 = f[f0 + 2u * block + index];
        }
        e = sign * vec3<f32>(f[f0 + index], f[f0 + block + index], v2);
        let c1 = hp.s1a * e.y + hp.s1b;
        for (var y = 0u; y < hp.k; y++) {
            let on = select(0.0, sign, y == index);
            d_out[d0 + y] = 0.0;
            d_out[d0 + block + y] = on * c1;
            if second {
                d_out[d0 + 2u * block + y] = on * hp.s2;
            }
        }
    }
    energies[hp.e_off + 3u * r] = e.x;
    energies[hp.e_off + 3u * r + 1u] = e.y;
    energies[hp.e_off + 3u * r + 2u] = e.z;
}
