// The energy head of a network: from its outputs f [n, K] the energy of every point and
// dE/df, the start of the backward pass. CPU twin: `Head::energy_ref` (src/nn/reference.rs).
// kind 0: E = f; 1: E = -f; 2: E = -logsumexp f (JEM); 3: E = -f[class].

struct HeadParams {
    n: u32,
    k: u32,
    kind: u32,
    class_index: u32,
    f_off: u32,
    e_off: u32,
    d_off: u32,
    _pad: u32,
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
            d_out[db] = 1.0;
        }
        case 1u: {
            e = -f[fb];
            d_out[db] = -1.0;
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
                d_out[db + y] = -(exp(f[fb + y] - m) / s);
            }
            e = -(m + log(s));
        }
        default: {
            for (var y = 0u; y < hp.k; y++) {
                d_out[db + y] = select(0.0, -1.0, y == hp.class_index);
            }
            e = -f[fb + hp.class_index];
        }
    }
    energies[hp.e_off + r] = e;
}

