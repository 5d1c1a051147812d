// The activation of a layer kernel's epilogue (nn_gemm, nn_conv2d, nn_elementwise): `nn_act`
// and its slope `nn_act_grad`. This file is the identity, used by kernels without an
// activation; src/nn/gpu.rs replaces the module with one built from `Activation::wgsl()`, the
// expressions the CPU twin (`Activation::eval`) mirrors, so both executors share one formula.
#import common/activations.wgsl

fn nn_act(z: f32) -> f32 {
    return z;
}

fn nn_act_grad(z: f32) -> f32 {
    return 1.0;
}

// (act, act', act'', act''') for the jet kernels.
fn nn_act_jet(z: f32) -> vec4<f32> {
    return vec4<f32>(z, 1.0, 0.0, 0.0);
}
