//! The WGSL of MLP-shaped networks, fused into the kernels that evaluate them: one emitter,
//! [`emit_pass`], writes the forward pass and the backward pass to the input or the hidden
//! layers wherever the activations live ([`Places`]: registers per chain in
//! [`MlpView::wgsl_function`], the training tape in `train/gpu.rs`); the tiled strategy's module
//! ([`MlpView::wgsl_tiled_module`]) runs the same layer plan ([`MlpView::param_offsets`]) through the
//! tile helpers of shaders/nn/mlp_tiled.wgsl. CPU twin: [`MlpView::add_energy_grad`].

use super::MlpView;

/// Terms per iteration of the generated dot-product loops.
pub const UNROLL: usize = 8;

/// WGSL that adds `sum_{j < n} term(j)` to `acc`: a loop over blocks of [`UNROLL`] terms, then
/// the remainder written out. `term` receives an index expression.
pub(crate) fn dot_product(acc: &str, n: usize, term: &dyn Fn(&str) -> String) -> String {
    let blocks = n / UNROLL * UNROLL;
    let mut s = String::new();
    if blocks > 0 {
        let terms: Vec<String> = (0..UNROLL).map(|u| term(&format!("j + {u}u"))).collect();
        s += &format!("        for (var j = 0u; j < {blocks}u; j += {UNROLL}u) {{\n            {acc} += {};\n        }}\n", terms.join("\n                + "));
    }
    for j in blocks..n {
        s += &format!("        {acc} += {};\n", term(&format!("{j}u")));
    }
    s
}

/// Chains per workgroup tile, input chunk staged through workgroup memory, and threads per
/// workgroup of the tiled strategy (shaders/nn/mlp_tiled.wgsl).
pub const TILE_CHAINS: usize = 16;
pub const TILE_K: usize = 64;
pub const TILE_THREADS: usize = 64;

/// What the tiled strategy's launcher needs from a network.
pub struct TiledNet {
    /// The `mlp_net` WGSL module.
    pub source: String,
    /// Scratch floats per chain.
    pub scratch_floats: usize,
    /// Loop iterations of one evaluation per invocation (see `GpuContext::loop_budget`).
    pub loop_iterations: u64,
}

/// Where a fused pass keeps its values: the one thing the fused MLP kernels differ in.
pub(crate) trait Places {
    /// The network's parameter at `index` (an index expression relative to the network's first).
    fn param(&self, index: &str) -> String;
    /// Element `i` (an index expression) of the input point.
    fn point(&self, i: &str) -> String;
    /// Element `o` of hidden layer k's activation.
    fn hidden(&self, k: usize, o: &str) -> String;
    /// Element `o` of hidden layer k's slope act'(z), which the backward pass turns into dE/dz
    /// in place.
    fn slope(&self, k: usize, o: &str) -> String;
    /// Declarations hidden layer k (of `width` units) needs before it is written.
    fn declare(&self, _k: usize, _width: usize) -> String {
        String::new()
    }
}

/// The statement that stores component `i` (an index expression) of the input gradient, given
/// its value (an expression).
pub(crate) type InputGrad = dyn Fn(&str, &str) -> String;

/// The statements of one pass through `mlp`: the forward pass, leaving the output (without
/// its sign) in `var out`, then the backward pass with the output's derivative `sign`, which
/// leaves dE/dz of every hidden layer in its slope places. With `input_grad`, also the input
/// gradient: each component's statement is `input_grad(i, value)` for i a loop index over the
/// input. `act` and `dact` name the WGSL functions of the activation and its slope.
pub(crate) fn emit_pass(
    mlp: &MlpView<'_>,
    places: &dyn Places,
    act: &str,
    dact: &str,
    sign: &str,
    input_grad: Option<&InputGrad>,
) -> String {
    let layers = &mlp.layers;
    let hidden = layers.len() - 1;
    let offsets = mlp.param_offsets();
    let input = |k: usize, i: &str| if k == 0 { places.point(i) } else { places.hidden(k - 1, i) };
    let mut s = String::new();
    for (k, l) in layers[..hidden].iter().enumerate() {
        let (w, b) = offsets[k];
        let dot = dot_product("z", l.inputs, &|i| format!("{} * {}", places.param(&format!("row + {i}")), input(k, i)));
        s += &format!(
            "{decl}    for (var o = 0u; o < {o}u; o++) {{\n        var z = {bias};\n        let row = {w}u + o * {i}u;\n{dot}        \
             {h} = {act}(z);\n        {sl} = {dact}(z);\n    }}\n",
            decl = places.declare(k, l.outputs),
            o = l.outputs,
            i = l.inputs,
            bias = places.param(&format!("{b}u + o")),
            h = places.hidden(k, "o"),
            sl = places.slope(k, "o"),
        );
    }
    let last = &layers[hidden];
    let (w, b) = offsets[hidden];
    let dot = dot_product("out", last.inputs, &|i| format!("{} * {}", places.param(&format!("{w}u + {i}")), input(hidden, i)));
    s += &format!("    var out = {};\n{dot}", places.param(&format!("{b}u")));
    if hidden == 0 {
        if let Some(grad) = input_grad {
            let value = format!("{sign} * {}", places.param(&format!("{w}u + i")));
            s += &format!("    for (var i = 0u; i < {}u; i++) {{ {} }}\n", last.inputs, grad("i", &value));
        }
        return s;
    }
    s += &format!(
        "    for (var i = 0u; i < {}u; i++) {{ {} *= {sign} * {}; }}\n",
        last.inputs,
        places.slope(hidden - 1, "i"),
        places.param(&format!("{w}u + i"))
    );
    let lowest = if input_grad.is_some() { 0 } else { 1 };
    for k in (lowest..hidden).rev() {
        let l = &layers[k];
        let (w, _) = offsets[k];
        let dot = dot_product("acc", l.outputs, &|o| {
            format!("{} * {}", places.param(&format!("{w}u + ({o}) * {}u + i", l.inputs)), places.slope(k, o))
        });
        let store = match (k, input_grad) {
            (0, Some(grad)) => grad("i", "acc"),
            _ => format!("{} *= acc;", places.slope(k - 1, "i")),
        };
        s += &format!("    for (var i = 0u; i < {}u; i++) {{\n        var acc = 0.0;\n{dot}        {store}\n    }}\n", l.inputs);
    }
    s
}

/// Per chain, in registers: the function of [`MlpView::wgsl_function`], parameters from `base`.
struct Registers;

impl Places for Registers {
    fn param(&self, index: &str) -> String {
        format!("energy_params[base + {index}]")
    }
    fn point(&self, i: &str) -> String {
        format!("(*x)[{i}]")
    }
    fn hidden(&self, k: usize, o: &str) -> String {
        format!("h{k}[{o}]")
    }
    fn slope(&self, k: usize, o: &str) -> String {
        format!("s{k}[{o}]")
    }
    fn declare(&self, k: usize, width: usize) -> String {
        format!("    var h{k}: array<f32, {width}>;\n    var s{k}: array<f32, {width}>;\n")
    }
}

impl MlpView<'_> {
    /// (weight, bias) offsets of every layer in the parameter block ([`MlpView::pack_into`]).
    pub(crate) fn param_offsets(&self) -> Vec<(usize, usize)> {
        let mut at = 0;
        self.layers
            .iter()
            .map(|l| {
                let w = at;
                at += l.inputs * l.outputs + l.outputs;
                (w, w + l.inputs * l.outputs)
            })
            .collect()
    }

    /// A WGSL function `name(x, g, base, weight) -> f32` with the analytic energies'
    /// signature ([`emit_pass`] in registers): sizes are compile-time constants, parameters
    /// read from `energy_params`. Dot products are unrolled by [`UNROLL`]: fewer loop
    /// iterations per invocation (software adapters cap those, see `GpuContext::loop_budget`)
    /// and more independent multiply-adds.
    pub fn wgsl_function(&self, name: &str) -> String {
        let (act, dact) = self.activation.wgsl();
        let sign = if self.negate { "-1.0" } else { "1.0" };
        let grad = |i: &str, value: &str| format!("(*g)[{i}] += weight * {value};");
        let pass = emit_pass(self, &Registers, &format!("{name}_act"), &format!("{name}_dact"), "sign", Some(&grad));
        format!(
            "fn {name}_act(z: f32) -> f32 {{ return {act}; }}\nfn {name}_dact(z: f32) -> f32 {{ return {dact}; }}\n\
             fn {name}(x: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n    \
             let sign = {sign};\n{pass}    return weight * sign * out;\n}}\n"
        )
    }

    /// The generated `mlp_net` module of the tiled strategy (shaders/nn/mlp_tiled.wgsl): tile
    /// constants, the per-chain scratch layout, the activation, and `tile_energy_grad`, which
    /// runs the layers for a tile of chains. Needs at least one hidden layer.
    pub fn wgsl_tiled_module(&self) -> TiledNet {
        let (act, dact) = self.activation.wgsl();
        let dim = self.input_dim();
        let hidden = self.layers.len() - 1;
        let widths: Vec<usize> = self.layers[..hidden].iter().map(|l| l.outputs).collect();
        // Scratch per chain: x, y, grad x, grad y, then h and act'(z) per hidden layer, then two
        // delta buffers for the backward pass.
        let mut at = 4 * dim;
        let mut h_off = Vec::new();
        let mut s_off = Vec::new();
        for &w in &widths {
            h_off.push(at);
            s_off.push(at + w);
            at += 2 * w;
        }
        let max_w = widths.iter().copied().max().unwrap_or(1);
        let (delta_a, delta_b) = (at, at + max_w);
        let scratch = at + 2 * max_w;
        let w_off: Vec<usize> = self.param_offsets().iter().map(|&(w, _)| w).collect();
        let mut body = String::new();
        for k in 0..=hidden {
            let l = &self.layers[k];
            let input = if k == 0 { "in_off".to_string() } else { format!("{}u", h_off[k - 1]) };
            let (h, sl, out) = if k < hidden { (h_off[k], s_off[k], "false") } else { (0, 0, "true") };
            body += &format!("    dense_forward(tid, first, {input}, {}u, {}u, {}u, {h}u, {sl}u, {out});\n", l.inputs, l.outputs, w_off[k]);
        }
        body += &format!(
            "    output_delta(tid, first, {}u, {}u, {}u, {delta_a}u, NET_SIGN);\n",
            self.layers[hidden].inputs,
            w_off[hidden],
            s_off[hidden - 1]
        );
        let (mut src, mut dst) = (delta_a, delta_b);
        for k in (0..hidden).rev() {
            let l = &self.layers[k];
            if k > 0 {
                body += &format!(
                    "    dense_backward(tid, first, {src}u, {}u, {}u, {}u, {dst}u, {}u, true);\n",
                    l.inputs, l.outputs, w_off[k], s_off[k - 1]
                );
                std::mem::swap(&mut src, &mut dst);
            } else {
                body += &format!("    dense_backward(tid, first, {src}u, {}u, {}u, {}u, g_off, 0u, false);\n", l.inputs, l.outputs, w_off[k]);
            }
        }
        let source = format!(
            "const T: u32 = {TILE_CHAINS}u;\nconst KC: u32 = {TILE_K}u;\nconst WG: u32 = {TILE_THREADS}u;\n\
             const TILE_ELEMS: u32 = {}u;\nconst SCR: u32 = {scratch}u;\nconst X_OFF: u32 = 0u;\nconst Y_OFF: u32 = {dim}u;\n\
             const GX_OFF: u32 = {}u;\nconst GY_OFF: u32 = {}u;\nconst NET_SIGN: f32 = {};\n\
             fn net_act(z: f32) -> f32 {{ return {act}; }}\nfn net_dact(z: f32) -> f32 {{ return {dact}; }}\n\
             fn tile_energy_grad(tid: u32, first: u32, in_off: u32, g_off: u32) {{\n{body}}}\n",
            TILE_CHAINS * TILE_K,
            2 * dim,
            3 * dim,
            if self.negate { "-1.0" } else { "1.0" },
        );
        // Loop iterations per thread: per layer, neuron blocks x input chunks x (staging +
        // the chunk's multiply-adds; the loop over the T chains is short and unrolled).
        let chunks = |n: usize, by: usize| n.div_ceil(by) as u64;
        let staging = (TILE_CHAINS * TILE_K / TILE_THREADS + TILE_K) as u64;
        let layers: u64 = self
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let forward = chunks(l.outputs, TILE_THREADS) * chunks(l.inputs, TILE_K) * staging;
                let backward = if k < hidden { chunks(l.inputs, TILE_THREADS) * chunks(l.outputs, TILE_K) * staging } else { 0 };
                forward + backward
            })
            .sum();
        TiledNet { source, scratch_floats: scratch, loop_iterations: layers + (TILE_CHAINS * dim / TILE_THREADS) as u64 }
    }
}
