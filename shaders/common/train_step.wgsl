// The per-pair loss derivatives and the optimizer update of a training step, shared by the
// MLP trainer (train.wgsl) and the layer-kernel trainer (train_layered.wgsl). CPU twins:
// `pair_weights` in src/train/mod.rs and `optimizer_step` in src/train/cpu.rs.
#import common/activations.wgsl
#import common/langevin.wgsl

// Floats per metrics row: loss, e_pos, e_neg, grad_norm, log_z, reset_fraction, neg_radius,
// cross_entropy, generator_loss (StepMetrics and METRIC_FLOATS in src/train/mod.rs).
const METRIC_FLOATS: u32 = 9u;

// One-workgroup reductions (the loss, the gradient norm): each of the REDUCE threads leaves its
// partial sums in sums_a / sums_b, reduce_sums(t) tree-sums them into element 0 in a fixed order.
const REDUCE: u32 = 256u;
var<workgroup> sums_a: array<vec4<f32>, REDUCE>;
var<workgroup> sums_b: array<vec2<f32>, REDUCE>;

fn reduce_sums(t: u32) {
    workgroupBarrier();
    for (var stride = REDUCE / 2u; stride > 0u; stride >>= 1u) {
        if t < stride {
            sums_a[t] += sums_a[t + stride];
            sums_b[t] += sums_b[t + stride];
        }
        workgroupBarrier();
    }
}

// dL/dE of the positive and the negative, the pair's loss and dL/d(log Z), before the 1/B.
struct PairWeights {
    wp: f32,
    wn: f32,
    loss: f32,
    dz: f32,
}

// loss: 0 cd, 1 softplus, 2 hinge, 3 nce. For NCE, log_q are the noise log densities.
fn pair_weights(loss: u32, alpha: f32, margin: f32, ep: f32, en: f32, log_z: f32, log_q_pos: f32, log_q_neg: f32) -> PairWeights {
    let reg = alpha * (ep * ep + en * en);
    let rp = 2.0 * alpha * ep;
    let rn = 2.0 * alpha * en;
    if loss == 1u {
        let s = sigmoid(ep - en);
        return PairWeights(s + rp, -s + rn, softplus(ep - en) + reg, 0.0);
    }
    if loss == 2u {
        let z = margin + ep - en;
        let on = select(0.0, 1.0, z > 0.0);
        return PairWeights(on + rp, -on + rn, max(z, 0.0) + reg, 0.0);
    }
    if loss == 3u {
        let g_pos = -ep - log_z - log_q_pos;
        let g_neg = -en - log_z - log_q_neg;
        let sp = sigmoid(-g_pos);
        let sn = sigmoid(g_neg);
        return PairWeights(sp, -sn, softplus(-g_pos) + softplus(g_neg), sp - sn);
    }
    return PairWeights(1.0 + rp, -1.0 + rn, ep - en + reg, 0.0);
}

struct OptimizerSettings {
    kind: u32,          // 0 adam, 1 sgd with momentum
    lr: f32,
    bias1: f32,
    bias2: f32,
    beta1: f32,         // adam beta1, or sgd momentum
    beta2: f32,
    eps: f32,
}

// One parameter's update from its (clipped, weight-decayed) gradient g: (theta, m, v) after.
fn optimizer_update(o: OptimizerSettings, theta: f32, g: f32, m_old: f32, v_old: f32) -> vec3<f32> {
    if o.kind == 0u {
        let m = o.beta1 * m_old + (1.0 - o.beta1) * g;
        let v = o.beta2 * v_old + (1.0 - o.beta2) * g * g;
        return vec3<f32>(theta - o.lr * (m / o.bias1) / (sqrt(v / o.bias2) + o.eps), m, v);
    }
    let m = o.beta1 * m_old + g;
    return vec3<f32>(theta - o.lr * m, m, v_old);
}
