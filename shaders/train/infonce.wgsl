// InfoNCE (loss 7) in the layer-kernel trainer, written against train_layered.wgsl's
// bindings and offsets (it imports this file). One step:
//   infonce_views                        the two views of the batch: a_j into the first block of
//                                        the points region, b_j into the second
//   network pass on the 2B points (forward)
//   infonce_loss                         unit features, the B x B similarities' softmaxes, the
//                                        symmetric loss and dL/df into d_out, metrics
//   network backward pass, grad_norm, optimizer_step
// CPU twin: src/train/contrastive.rs (`views`, `Augment::view`, `info_nce`), the same Philox
// counters and formulas.

// Scratch after the scalars: the unit features (2B x K), their norms (2B), and per line i of
// the similarities s[i][j] = <za_i, zb_j>/T its row's max and sum of exp, then its column's (4B).
fn nce_z(r: u32) -> u32 {
    return scalar_off() + 4u + r * p.outputs;
}
fn nce_norm(r: u32) -> u32 {
    return scalar_off() + 4u + 2u * p.batch * p.outputs + r;
}
fn nce_stats(i: u32) -> u32 {
    return scalar_off() + 4u + 2u * p.batch * (p.outputs + 1u) + 4u * i;
}

// The image at `src` of data moved by (dy, dx), turned by `angle` and magnified by `factor`
// about its centre into `dst` of work: each pixel reads its source point bilinearly,
// coordinates clamped to the image (contrastive.rs `warp`).
fn warp_view(src: u32, dst: u32, dy: f32, dx: f32, angle: f32, factor: f32) {
    let h = p.height;
    let w = p.width;
    let cy = (f32(h) - 1.0) / 2.0;
    let cx = (f32(w) - 1.0) / 2.0;
    let sn = sin(angle);
    let cs = cos(angle);
    for (var r = 0u; r < h; r++) {
        for (var col = 0u; col < w; col++) {
            let py = f32(r) - dy - cy;
            let px = f32(col) - dx - cx;
            let sy = clamp((cs * py - sn * px) / factor + cy, 0.0, f32(h) - 1.0);
            let sx = clamp((sn * py + cs * px) / factor + cx, 0.0, f32(w) - 1.0);
            let y0 = u32(floor(sy));
            let x0 = u32(floor(sx));
            let y1 = min(y0 + 1u, h - 1u);
            let x1 = min(x0 + 1u, w - 1u);
            let fy = sy - f32(y0);
            let fx = sx - f32(x0);
            for (var ch = 0u; ch < p.channels; ch++) {
                let plane = src + ch * h * w;
                let top = data[plane + y0 * w + x0] + fx * (data[plane + y0 * w + x1] - data[plane + y0 * w + x0]);
                let bottom = data[plane + y1 * w + x0] + fx * (data[plane + y1 * w + x1] - data[plane + y1 * w + x0]);
                work[dst + (ch * h + r) * w + col] = top + fy * (bottom - top);
            }
        }
    }
}

// One invocation per (batch entry j, view v): view v of the entry's data row (for given pairs,
// view 1 of the row's pair, data_rows rows later) into block v of the points region.
@compute @workgroup_size(64)
fn infonce_views(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= 2u * p.batch {
        return;
    }
    let v = gid.x / p.batch;
    let j = gid.x % p.batch;
    var row = batch_row(j);
    if v == 1u && p.paired == 1u {
        row += p.data_rows;
    }
    let src = 4u * p.dim + row * p.dim;
    let dst = points_off() + (v * p.batch + j) * p.dim;
    let base = v * (1u + (p.dim + 3u) / 4u);
    let moves = p.view_shift > 0u || p.view_rotate > 0.0 || p.view_zoom > 0.0;
    if p.height > 0u && moves {
        let u = uniform4(p.seed, j, p.step, STREAM_VIEWS, base);
        let span = 2u * p.view_shift + 1u;
        let dy = i32(min(u32(u.x * f32(span)), span - 1u)) - i32(p.view_shift);
        let dx = i32(min(u32(u.y * f32(span)), span - 1u)) - i32(p.view_shift);
        if p.view_rotate == 0.0 && p.view_zoom == 0.0 {
            let h = i32(p.height);
            let w = i32(p.width);
            for (var ch = 0; ch < i32(p.channels); ch++) {
                for (var r = 0; r < h; r++) {
                    let sr = clamp(r - dy, 0, h - 1);
                    for (var col = 0; col < w; col++) {
                        let sc = clamp(col - dx, 0, w - 1);
                        work[dst + u32((ch * h + r) * w + col)] = data[src + u32((ch * h + sr) * w + sc)];
                    }
                }
            }
        } else {
            let angle = (2.0 * u.z - 1.0) * p.view_rotate;
            let factor = 1.0 + (2.0 * u.w - 1.0) * p.view_zoom;
            warp_view(src, dst, f32(dy), f32(dx), angle, factor);
        }
    } else {
        for (var i = 0u; i < p.dim; i++) {
            work[dst + i] = data[src + i];
        }
    }
    if p.view_noise > 0.0 {
        var draw: vec4<f32>;
        for (var i = 0u; i < p.dim; i++) {
            if i % 4u == 0u {
                draw = normal4(p.seed, j, p.step, STREAM_VIEWS, base + 1u + i / 4u);
            }
            work[dst + i] += p.view_noise * draw[i % 4u];
        }
    }
}

// s[i][j] = <za_i, zb_j> / T from the unit features.
fn nce_similarity(i: u32, j: u32) -> f32 {
    let a = nce_z(i);
    let b = nce_z(p.batch + j);
    var acc = 0.0;
    for (var m = 0u; m < p.outputs; m++) {
        acc += work[a + m] * work[b + m];
    }
    return acc / p.temperature;
}

// dL/dz of feature row `r` (view a's row i for r < B, view b's row r - B) into d_out: the sum
// over the other view's rows q of ds/T times their unit features, where ds[i][j] = (softmax over
// j of row i - [i = j] + softmax over i of column j - [i = j]) / 2B; then through the scaling
// to unit length, dL/df = (g - z <z, g>) / |f|.
fn nce_feature_grad(r: u32) {
    let b = p.batch;
    let k = p.outputs;
    let half_mean = 1.0 / (2.0 * f32(b));
    let out = r * k;
    for (var m = 0u; m < k; m++) {
        d_out[out + m] = 0.0;
    }
    for (var q = 0u; q < b; q++) {
        var i = r;
        var j = q;
        var other = nce_z(b + q);
        if r >= b {
            i = q;
            j = r - b;
            other = nce_z(q);
        }
        let s = nce_similarity(i, j);
        let delta = select(0.0, 1.0, i == j);
        let p_row = exp(s - work[nce_stats(i)]) / work[nce_stats(i) + 1u];
        let p_col = exp(s - work[nce_stats(j) + 2u]) / work[nce_stats(j) + 3u];
        let g = (half_mean * (p_row - delta) + half_mean * (p_col - delta)) / p.temperature;
        for (var m = 0u; m < k; m++) {
            d_out[out + m] += g * work[other + m];
        }
    }
    var along = 0.0;
    for (var m = 0u; m < k; m++) {
        along += d_out[out + m] * work[nce_z(r) + m];
    }
    let norm = work[nce_norm(r)];
    for (var m = 0u; m < k; m++) {
        d_out[out + m] = (d_out[out + m] - work[nce_z(r) + m] * along) / norm;
    }
}

// One workgroup: the symmetric InfoNCE loss of the 2B points' features (outputs: the first
// views' B rows, then the second views'), its gradient dL/df into d_out, and the metrics row
// (loss, the mean pair energy -s of the B matching pairs and of the B(B - 1) others, log Z).
@compute @workgroup_size(256)
fn infonce_loss(@builtin(local_invocation_index) t: u32) {
    let b = p.batch;
    let k = p.outputs;
    for (var r = t; r < 2u * b; r += REDUCE) {
        var sq = 0.0;
        for (var m = 0u; m < k; m++) {
            sq += outputs[r * k + m] * outputs[r * k + m];
        }
        let norm = max(sqrt(sq), 1e-12);
        for (var m = 0u; m < k; m++) {
            work[nce_z(r) + m] = outputs[r * k + m] / norm;
        }
        work[nce_norm(r)] = norm;
    }
    storageBarrier();
    let half_mean = 1.0 / (2.0 * f32(b));
    var acc = vec4<f32>(0.0); // loss, matching pairs' s, all pairs' s
    for (var line = t; line < b; line += REDUCE) {
        var row_max = nce_similarity(line, 0u);
        var col_max = nce_similarity(0u, line);
        for (var q = 1u; q < b; q++) {
            row_max = max(row_max, nce_similarity(line, q));
            col_max = max(col_max, nce_similarity(q, line));
        }
        var row_sum = 0.0;
        var col_sum = 0.0;
        var row_total = 0.0;
        for (var q = 0u; q < b; q++) {
            let s = nce_similarity(line, q);
            row_sum += exp(s - row_max);
            row_total += s;
            col_sum += exp(nce_similarity(q, line) - col_max);
        }
        let diag = nce_similarity(line, line);
        acc += vec4<f32>(half_mean * (row_max + log(row_sum) - diag) + half_mean * (col_max + log(col_sum) - diag), diag, row_total, 0.0);
        let at = nce_stats(line);
        work[at] = row_max;
        work[at + 1u] = row_sum;
        work[at + 2u] = col_max;
        work[at + 3u] = col_sum;
    }
    storageBarrier();
    for (var i = t; i < b; i += REDUCE) {
        nce_feature_grad(i);
        nce_feature_grad(b + i);
    }
    sums_a[t] = acc;
    sums_b[t] = vec2<f32>(0.0);
    reduce_sums(t);
    if t == 0u {
        let row = p.metrics_row * METRIC_FLOATS;
        let matching = sums_a[0].y;
        work[row] = sums_a[0].x;
        work[row + 1u] = -matching / f32(b);
        work[row + 2u] = select(0.0, -(sums_a[0].z - matching) / f32(b * (b - 1u)), b > 1u);
        work[row + 4u] = moments[log_z_at()];
        for (var m = 5u; m < METRIC_FLOATS; m++) {
            work[row + m] = 0.0;
        }
        moments[log_z_at() + 1u] = 0.0;
    }
}
