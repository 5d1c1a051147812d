// The per-dispatch parameters of the RBM kernels that share one host-side struct
// (`rbm.wgsl`, `rbm_eval.wgsl`, `rbm_update.wgsl`; `RbmParams` in src/rbm/gpu.rs).

struct Params {
    rows: u32,
    n_vis: u32,
    n_hid: u32,
    // First row read from `src` (a slot of the data ring).
    in_offset: u32,
    seed: vec2<u32>,
    step: u32,
    chain_offset: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    neg_rows: u32,
    out_offset: u32,
    gaussian: u32,
    // rbm_update.wgsl: 1 leaves the visible bias and its velocity alone (a DBM's layer 2).
    frozen_visible_bias: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
