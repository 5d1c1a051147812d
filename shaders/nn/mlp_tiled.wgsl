// Cooperative MLP evaluation for a tile of T chains per workgroup (the "tiled" strategy for
// wide layers): each dense layer is a small GEMM, [T, in] x [in, out], where a thread owns one
// output neuron for all T chains and the tile's inputs are staged through workgroup memory in
// chunks of KC, so every weight read from memory serves T chains. Activations, their slopes and
// the backward deltas live in a per-chain scratch buffer. Sums run in input order, as in the
// CPU twin (`MlpView::add_energy_grad`). The generated `mlp_net` module supplies T, KC, WG, SCR, the
// activation `net_act`/`net_dact` and `tile_energy_grad`, which calls these layer functions.
// Host side: src/sampler/gpu.rs; kernels: shaders/sampler/langevin_tiled.wgsl.

var<workgroup> tile: array<f32, TILE_ELEMS>;
// Raw network output of each chain of the tile (before the sign convention).
var<workgroup> out_tile: array<f32, T>;

fn scratch_at(first: u32, c: u32, offset: u32) -> u32 {
    return (first + c) * SCR + offset;
}

// out[c][o] = b[o] + sum_k W[o][k] in[c][k]; then h = act(out), s = act'(out) (or, for the
// output layer, out_tile[c] = out[c][0]).
fn dense_forward(tid: u32, first: u32, in_off: u32, n_in: u32, n_out: u32, w_off: u32, h_off: u32, s_off: u32, is_output: bool) {
    for (var ob = 0u; ob < n_out; ob += WG) {
        let o = ob + tid;
        var acc: array<f32, T>;
        let bias = energy_params[w_off + n_in * n_out + min(o, n_out - 1u)];
        for (var c = 0u; c < T; c++) {
            acc[c] = bias;
        }
        for (var kb = 0u; kb < n_in; kb += KC) {
            for (var j = tid; j < T * KC; j += WG) {
                let c = j / KC;
                let k = kb + j % KC;
                var v = 0.0;
                if k < n_in && first + c < p.n_chains {
                    v = scratch[scratch_at(first, c, in_off + k)];
                }
                tile[j] = v;
            }
            workgroupBarrier();
            if o < n_out {
                let kn = min(KC, n_in - kb);
                let row = w_off + o * n_in + kb;
                for (var k = 0u; k < kn; k++) {
                    let w = energy_params[row + k];
                    for (var c = 0u; c < T; c++) {
                        acc[c] += w * tile[c * KC + k];
                    }
                }
            }
            workgroupBarrier();
        }
        if o < n_out {
            for (var c = 0u; c < T; c++) {
                if first + c < p.n_chains {
                    if is_output {
                        out_tile[c] = acc[c];
                    } else {
                        scratch[scratch_at(first, c, h_off + o)] = net_act(acc[c]);
                        scratch[scratch_at(first, c, s_off + o)] = net_dact(acc[c]);
                    }
                }
            }
        }
    }
    storageBarrier();
    workgroupBarrier();
}

// dst[c][i] = sign * w_out[i] * s[c][i]: dE/dz of the last hidden layer.
fn output_delta(tid: u32, first: u32, n: u32, w_off: u32, s_off: u32, dst_off: u32, sign: f32) {
    for (var j = tid; j < T * n; j += WG) {
        let c = j / n;
        let i = j % n;
        if first + c < p.n_chains {
            scratch[scratch_at(first, c, dst_off + i)] = sign * energy_params[w_off + i] * scratch[scratch_at(first, c, s_off + i)];
        }
    }
    storageBarrier();
    workgroupBarrier();
}

// dst[c][i] = (sum_o W[o][i] d[c][o]) * (s[c][i] if has_slope): one layer of backpropagation.
fn dense_backward(tid: u32, first: u32, d_off: u32, n_in: u32, n_out: u32, w_off: u32, dst_off: u32, s_off: u32, has_slope: bool) {
    for (var ib = 0u; ib < n_in; ib += WG) {
        let i = ib + tid;
        var acc: array<f32, T>;
        for (var obk = 0u; obk < n_out; obk += KC) {
            for (var j = tid; j < T * KC; j += WG) {
                let c = j / KC;
                let o = obk + j % KC;
                var v = 0.0;
                if o < n_out && first + c < p.n_chains {
                    v = scratch[scratch_at(first, c, d_off + o)];
                }
                tile[j] = v;
            }
            workgroupBarrier();
            if i < n_in {
                let on = min(KC, n_out - obk);
                for (var o = 0u; o < on; o++) {
                    let w = energy_params[w_off + (obk + o) * n_in + i];
                    for (var c = 0u; c < T; c++) {
                        acc[c] += w * tile[c * KC + o];
                    }
                }
            }
            workgroupBarrier();
        }
        if i < n_in {
            for (var c = 0u; c < T; c++) {
                if first + c < p.n_chains {
                    var v = acc[c];
                    if has_slope {
                        v *= scratch[scratch_at(first, c, s_off + i)];
                    }
                    scratch[scratch_at(first, c, dst_off + i)] = v;
                }
            }
        }
    }
    storageBarrier();
    workgroupBarrier();
}
