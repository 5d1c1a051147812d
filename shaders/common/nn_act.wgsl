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
