//! The WGSL of MLP-shaped networks, fused into the kernels that evaluate them: one emitter,
//! [`emit_pass`], plans the forward pass and the backward pass to the input or the hidden
//! layers, and each kernel writes the plan's steps where its activations live ([`Pass`]):
//! element loops over [`Places`] in registers per chain ([`MlpView::wgsl_function`]) or on
//! the training tape (`train/gpu.rs`), calls of the tile helpers of
//! shaders/nn/mlp_tiled.wgsl on a workgroup's scratch ([`MlpView::wgsl_tiled_module`]).
//! Parameters: [`MlpView::param_offsets`]. CPU twin: [`MlpView::add_energy_grad`].

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
        s += &format!(
            "        for (var j = 0u; j < {blocks}u; j += {UNROLL}u) {{\n            {acc} += {};\n        }}\n",
            terms.join("\n                + ")
        );
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
    /// Loop iterations of one evaluation per invocation (see `ContextInternals::loop_budget`).
    pub loop_iterations: u64,
}

/// Where an element-loop pass ([`Loops`]) keeps its values: what the per-chain and the tape
/// kernels differ in.
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

/// How one fused kernel writes each step of [`emit_pass`]'s plan: element loops over
/// [`Places`] ([`Loops`]: registers per chain, the training tape) or calls of the workgroup
/// tile's layer functions (`Tile`, shaders/nn/mlp_tiled.wgsl).
pub(crate) trait Pass {
    /// Hidden layer k: its activations and slopes act'(z) from the layer's input.
    fn hidden(&self, mlp: &MlpView<'_>, k: usize) -> String;
    /// The output layer: the network's output, without its sign.
    fn output(&self, mlp: &MlpView<'_>) -> String;
    /// Without hidden layers: the input gradient, the output weights times the sign.
    fn input_from_output(&self, mlp: &MlpView<'_>) -> String;
    /// dE/dz of the last hidden layer: the sign times the output weights times its slopes.
    fn output_delta(&self, mlp: &MlpView<'_>) -> String;
    /// Back through Linear layer k: dE/dz of hidden layer k - 1, or for k = 0 the input
    /// gradient.
    fn back(&self, mlp: &MlpView<'_>, k: usize) -> String;
}

/// The statements of one pass through `mlp`, the one plan every fused MLP kernel follows: the
/// forward pass (every hidden layer, then the output), then the backward pass from the output
/// to every hidden layer and, with `input_grad`, on to the input.
pub(crate) fn emit_pass(mlp: &MlpView<'_>, pass: &dyn Pass, input_grad: bool) -> String {
    let hidden = mlp.layers.len() - 1;
    let mut s: String = (0..hidden).map(|k| pass.hidden(mlp, k)).collect();
    s += &pass.output(mlp);
    if hidden == 0 {
        if input_grad {
            s += &pass.input_from_output(mlp);
        }
        return s;
    }
    s += &pass.output_delta(mlp);
    let lowest = if input_grad { 0 } else { 1 };
    for k in (lowest..hidden).rev() {
        s += &pass.back(mlp, k);
    }
    s
}

/// A pass written as element loops over [`Places`]: the forward pass leaves the output in
/// `var out`; the backward pass, with the output's derivative `sign`, turns every hidden
/// layer's slope places into dE/dz in place; the input gradient's components go through
/// `input_grad` (i a loop index over the input). `act` and `dact` name the WGSL functions of
/// the activation and its slope.
pub(crate) struct Loops<'a> {
    pub places: &'a dyn Places,
    pub act: &'a str,
    pub dact: &'a str,
    pub sign: &'a str,
    pub input_grad: Option<&'a InputGrad>,
}

impl Loops<'_> {
    /// Element `i` of layer k's input.
    fn input(&self, k: usize, i: &str) -> String {
        if k == 0 { self.places.point(i) } else { self.places.hidden(k - 1, i) }
    }
}

impl Pass for Loops<'_> {
    fn hidden(&self, mlp: &MlpView<'_>, k: usize) -> String {
        let (l, (w, b)) = (&mlp.layers[k], mlp.param_offsets()[k]);
        let p = self.places;
        let dot = dot_product("z", l.inputs, &|i| format!("{} * {}", p.param(&format!("row + {i}")), self.input(k, i)));
        format!(
            "{decl}    for (var o = 0u; o < {o}u; o++) {{\n        var z = {bias};\n        let row = {w}u + o * {i}u;\n{dot}        \
             {h} = {act}(z);\n        {sl} = {dact}(z);\n    }}\n",
            decl = p.declare(k, l.outputs),
            o = l.outputs,
            i = l.inputs,
            bias = p.param(&format!("{b}u + o")),
            h = p.hidden(k, "o"),
            sl = p.slope(k, "o"),
            act = self.act,
            dact = self.dact,
        )
    }

    fn output(&self, mlp: &MlpView<'_>) -> String {
        let hidden = mlp.layers.len() - 1;
        let (w, b) = mlp.param_offsets()[hidden];
        let p = self.places;
        let dot = dot_product("out", mlp.layers[hidden].inputs, &|i| {
            format!("{} * {}", p.param(&format!("{w}u + {i}")), self.input(hidden, i))
        });
        format!("    var out = {};\n{dot}", p.param(&format!("{b}u")))
    }

    fn input_from_output(&self, mlp: &MlpView<'_>) -> String {
        let (w, _) = mlp.param_offsets()[0];
        let grad = self.input_grad.expect("the plan asks for the input gradient only with one");
        let value = format!("{} * {}", self.sign, self.places.param(&format!("{w}u + i")));
        format!("    for (var i = 0u; i < {}u; i++) {{ {} }}\n", mlp.layers[0].inputs, grad("i", &value))
    }

    fn output_delta(&self, mlp: &MlpView<'_>) -> String {
        let hidden = mlp.layers.len() - 1;
        let (w, _) = mlp.param_offsets()[hidden];
        format!(
            "    for (var i = 0u; i < {}u; i++) {{ {} *= {} * {}; }}\n",
            mlp.layers[hidden].inputs,
            self.places.slope(hidden - 1, "i"),
            self.sign,
            self.places.param(&format!("{w}u + i"))
        )
    }

    fn back(&self, mlp: &MlpView<'_>, k: usize) -> String {
        let (l, (w, _)) = (&mlp.layers[k], mlp.param_offsets()[k]);
        let p = self.places;
        let dot = dot_product("acc", l.outputs, &|o| {
            format!("{} * {}", p.param(&format!("{w}u + ({o}) * {}u + i", l.inputs)), p.slope(k, o))
        });
        let store = match (k, self.input_grad) {
            (0, Some(grad)) => grad("i", "acc"),
            _ => format!("{} *= acc;", p.slope(k - 1, "i")),
        };
        format!(
            "    for (var i = 0u; i < {}u; i++) {{\n        var acc = 0.0;\n{dot}        {store}\n    }}\n",
            l.inputs
        )
    }
}

/// The workgroup tile's pass (shaders/nn/mlp_tiled.wgsl): each step a call of the tile's
/// layer functions on the per-chain scratch, hidden layer k's activations at `h_off[k]` and
/// slopes at `s_off[k]`; the backward pass alternates between the two delta buffers and ends
/// in the input gradient at `g_off`.
struct Tile {
    h_off: Vec<usize>,
    s_off: Vec<usize>,
    deltas: [usize; 2],
}

impl Tile {
    fn forward(mlp: &MlpView<'_>, k: usize, input: &str, h: usize, s: usize, output: bool) -> String {
        let (l, (w, _)) = (&mlp.layers[k], mlp.param_offsets()[k]);
        format!("    dense_forward(tid, first, {input}, {}u, {}u, {w}u, {h}u, {s}u, {output});\n", l.inputs, l.outputs)
    }

    /// Layer k's input: the point, or hidden layer k - 1's activations.
    fn input(&self, k: usize) -> String {
        if k == 0 { "in_off".to_string() } else { format!("{}u", self.h_off[k - 1]) }
    }
}

impl Pass for Tile {
    fn hidden(&self, mlp: &MlpView<'_>, k: usize) -> String {
        Self::forward(mlp, k, &self.input(k), self.h_off[k], self.s_off[k], false)
    }

    fn output(&self, mlp: &MlpView<'_>) -> String {
        let hidden = mlp.layers.len() - 1;
        Self::forward(mlp, hidden, &self.input(hidden), 0, 0, true)
    }

    fn input_from_output(&self, _: &MlpView<'_>) -> String {
        unreachable!("the tiled strategy needs a hidden layer")
    }

    fn output_delta(&self, mlp: &MlpView<'_>) -> String {
        let hidden = mlp.layers.len() - 1;
        let (w, _) = mlp.param_offsets()[hidden];
        format!(
            "    output_delta(tid, first, {}u, {w}u, {}u, {}u, NET_SIGN);\n",
            mlp.layers[hidden].inputs,
            self.s_off[hidden - 1],
            self.deltas[0]
        )
    }

    fn back(&self, mlp: &MlpView<'_>, k: usize) -> String {
        let (l, (w, _)) = (&mlp.layers[k], mlp.param_offsets()[k]);
        // The output delta is in deltas[0]; each layer back reads one buffer, writes the other.
        let from = (mlp.layers.len() - 2 - k) % 2;
        let (src, dst) = (self.deltas[from], self.deltas[1 - from]);
        if k > 0 {
            format!(
                "    dense_backward(tid, first, {src}u, {}u, {}u, {w}u, {dst}u, {}u, true);\n",
                l.inputs,
                l.outputs,
                self.s_off[k - 1]
            )
        } else {
            format!("    dense_backward(tid, first, {src}u, {}u, {}u, {w}u, g_off, 0u, false);\n", l.inputs, l.outputs)
        }
    }
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
    /// iterations per invocation (software adapters cap those, see `ContextInternals::loop_budget`)
    /// and more independent multiply-adds.
    pub fn wgsl_function(&self, name: &str) -> String {
        let (act, dact) = self.activation.wgsl();
        let sign = if self.negate { "-1.0" } else { "1.0" };
        let grad = |i: &str, value: &str| format!("(*g)[{i}] += weight * {value};");
        let (act_fn, dact_fn) = (format!("{name}_act"), format!("{name}_dact"));
        let loops = Loops { places: &Registers, act: &act_fn, dact: &dact_fn, sign: "sign", input_grad: Some(&grad) };
        let pass = emit_pass(self, &loops, true);
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
        let body = emit_pass(self, &Tile { h_off, s_off, deltas: [delta_a, delta_b] }, true);
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
                let backward =
                    if k < hidden { chunks(l.inputs, TILE_THREADS) * chunks(l.outputs, TILE_K) * staging } else { 0 };
                forward + backward
            })
            .sum();
        TiledNet {
            source,
            scratch_floats: scratch,
            loop_iterations: layers + (TILE_CHAINS * dim / TILE_THREADS) as u64,
        }
    }
}
