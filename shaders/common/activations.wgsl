// Activation functions and their derivatives (CPU twin: `Activation::eval` in
// src/energy/mlp.rs), written to stay finite for large |z|.

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
