// Activation functions and their derivatives (CPU twin: `Activation::eval` in
// src/nn/activation.rs), written to stay finite for large |z|.

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

fn silu(z: f32) -> f32 {
    return z * sigmoid(z);
}

fn silu_grad(z: f32) -> f32 {
    let s = sigmoid(z);
    return s * (1.0 + z * (1.0 - s));
}

fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log(1.0 + exp(-abs(z)));
}

// (act, act', act'', act''') for the jets of score matching (CPU twin:
// `Activation::derivatives`); s' = s (1 - s) = q.
fn silu_jet(z: f32) -> vec4<f32> {
    let s = sigmoid(z);
    let q = s * (1.0 - s);
    let u = 1.0 - 2.0 * s;
    return vec4<f32>(z * s, s * (1.0 + z * (1.0 - s)), q * (2.0 + z * u), q * (u * (3.0 + z * u) - 2.0 * z * q));
}

fn tanh_jet(z: f32) -> vec4<f32> {
    let t = tanh(z);
    let d = 1.0 - t * t;
    return vec4<f32>(t, d, -2.0 * t * d, d * (6.0 * t * t - 2.0));
}

fn softplus_jet(z: f32) -> vec4<f32> {
    let s = sigmoid(z);
    let q = s * (1.0 - s);
    return vec4<f32>(softplus(z), s, q, q * (1.0 - 2.0 * s));
}
