//! Networks as one layer description that every executor and every use reads.
//!
//! A [`Network`] is an input [`Shape`], a list of [`Layer`]s (Linear, Conv2d, activations,
//! Flatten, AvgPool2d, and the markers of residual blocks y = x + F(x), [`residual`]) with
//! their parameters in PyTorch's layout, and a [`Head`] that turns
//! the network's K outputs into one energy. Each layer type is defined here once: its shape
//! rule ([`Layer::output_shape`]), its parameters ([`Layer::param_shapes`]), its CPU
//! forward/backward on a batch ([`cpu`], built on [`ops`]), its f64 definition ([`reference`])
//! and its WGSL ([`gpu`], `shaders/nn_*.wgsl`). Files: [`io`] (safetensors in nn.Sequential
//! naming, residual blocks as a `Residual` module's `body`/`proj`, the architecture in the
//! metadata); text form: [`Architecture::parse`] (`res(A,B,...[;proj:P])` for a block).
//! MLP-shaped
//! networks are also read as a [`MlpView`] ([`NetworkInternals::as_mlp`]), whose fused per-chain
//! WGSL ([`mlp`]) the samplers and the trainer inline. What only the engine uses of a
//! `Network` (views, packed parameters, tapes, the MLP format) is on [`NetworkInternals`],
//! out of the public API.

pub mod cpu;
pub mod gpu;
#[cfg(any(feature = "cli", feature = "internals"))]
pub mod gpu_jet;
pub mod gpu_net;
pub mod gpu_sum;
mod internals;
pub mod io;
pub mod jet;
pub mod mlp;
pub mod ops;
pub mod reference;
pub mod residual;
mod text;

mod activation;
use crate::{Error, Result};
pub use activation::Activation;
pub use internals::NetworkInternals;
pub use mlp::MlpView;
use std::fmt;
use text::describe;

/// The shape of one point as it flows through a network (the batch dimension is implicit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Flat(usize),
    /// Channels, height, width (NCHW without the N).
    Image {
        c: usize,
        h: usize,
        w: usize,
    },
}

impl Shape {
    pub fn len(&self) -> usize {
        match *self {
            Shape::Flat(d) => d,
            Shape::Image { c, h, w } => c.saturating_mul(h).saturating_mul(w),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (channels, height, width) of an image shape.
    pub fn image(&self) -> Option<(usize, usize, usize)> {
        match *self {
            Shape::Image { c, h, w } => Some((c, h, w)),
            Shape::Flat(_) => None,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Flat(d) => write!(f, "{d}"),
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
        }
    }
}

/// One layer's kind and hyper-parameters (no weights): what the text form describes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    /// nn.Linear(in, outputs): weight [outputs, in], bias [outputs].
    Linear {
        outputs: usize,
        bias: bool,
    },
    /// nn.Conv2d(in_c, out_c, kernel, stride, padding): weight [out_c, in_c, k, k], bias [out_c].
    Conv2d {
        out_c: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    },
    Act(Activation),
    /// nn.Flatten(): an image becomes a flat vector in C, H, W order.
    Flatten,
    /// nn.AvgPool2d(k): mean over k x k windows with stride k, the output size rounded down.
    AvgPool2d {
        kernel: usize,
    },
    /// Opens a residual block y = x + F(x) ([`residual`]): saves its input, the skip, and
    /// passes it on to the block's body F unchanged.
    ResBegin,
    /// Ends the body of a block that projects its skip: passes on the saved skip, whose
    /// projection (the one Conv2d or AvgPool2d layer that follows) meets the body at `ResEnd`.
    ResProj,
    /// Closes a residual block: its input plus the saved (projected) value.
    ResEnd,
}

/// How the network's outputs f(x) (K of them) become the energy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// E = f(x) (K = 1).
    F,
    /// E = -f(x) (K = 1): networks that output the negative energy, as the UvA and IGEBM ones.
    NegF,
    /// E = -logsumexp_y f(x)[y]: the JEM energy of a K-class classifier.
    LogSumExp,
    /// E(x, y) = -f(x)[y]: the class-conditional energy.
    Class(usize),
}

impl Head {
    /// Parses the text form after `head:`: `f`, `-f`, `lse` or `class:Y`.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "f" => Head::F,
            "-f" => Head::NegF,
            "lse" => Head::LogSumExp,
            _ => match text.strip_prefix("class:") {
                Some(y) => Head::Class(y.parse().map_err(|_| {
                    Error::invalid("network head", format!("class {y:?} is not a class index (0, 1, ...)"))
                })?),
                None => {
                    return Err(Error::invalid("network head", format!("{text:?}: expected f, -f, lse or class:Y")));
                }
            },
        })
    }

    fn text(&self) -> String {
        match self {
            Head::F => "f".into(),
            Head::NegF => "-f".into(),
            Head::LogSumExp => "lse".into(),
            Head::Class(y) => format!("class:{y}"),
        }
    }
}

/// A network's architecture: input shape, layers, head. Parameters live in [`Network`].
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub input: Shape,
    pub layers: Vec<LayerKind>,
    pub head: Head,
}

/// One layer with its parameters (empty for parameter-free layers), PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub kind: LayerKind,
    /// Shape of the layer's input.
    pub input: Shape,
    /// Shape of the layer's output (a `ResProj`'s is the saved skip's, not a function of its input).
    pub output: Shape,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A validated network with its parameters. Its fields stay inside the crate, so it stays
/// valid: build one with [`Network::new`], [`Network::random`], [`Network::load`] or
/// [`Network::from_tensors`].
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub(crate) input: Shape,
    pub(crate) layers: Vec<Layer>,
    pub(crate) head: Head,
    /// Output width K.
    pub(crate) outputs: usize,
}

/// Refuses sizes whose products overflow or that no machine could hold.
const MAX_WIDTH: usize = 1 << 28;

impl Architecture {
    /// The input shape of every layer and, last, the output shape; errors name the layer, and
    /// the head must suit the output.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let shapes = self.layer_shapes()?;
        let k = shapes.last().map_or(0, Shape::len);
        match self.head {
            Head::F | Head::NegF if k != 1 => Err(Error::invalid(
                "network head",
                format!(
                    "head {} needs one output, the network gives {k} (use head:lse or head:class:Y)",
                    self.head.text()
                ),
            )),
            Head::Class(y) if y >= k => {
                Err(Error::invalid("network head", format!("class {y} is out of range: the network gives {k} outputs")))
            }
            _ => Ok(shapes),
        }
    }

    /// [`Architecture::shapes`] without the head's check.
    fn layer_shapes(&self) -> Result<Vec<Shape>> {
        let mut shapes = vec![self.input];
        if self.input.is_empty() || self.input.len() > MAX_WIDTH {
            return Err(Error::invalid(
                "network",
                format!("input shape {} must hold between 1 and {MAX_WIDTH} values", self.input),
            ));
        }
        if self.layers.is_empty() {
            return Err(Error::invalid("network", "has no layers"));
        }
        let mut blocks = residual::Blocks::default();
        for (index, kind) in self.layers.iter().enumerate() {
            let input = *shapes.last().expect("starts non-empty");
            if let Some((w, b)) = kind.param_shapes(input) {
                // Weights and biases: the product of each shape, summed (not one product).
                let size = |shape: &[usize]| shape.iter().fold(1usize, |p, &d| p.saturating_mul(d));
                let count = size(&w).saturating_add(b.as_deref().map_or(0, size));
                if count > MAX_WIDTH {
                    return Err(Error::invalid(
                        format!("network layer {index} ({})", describe(kind)),
                        format!("would have over {count} parameters, more than {MAX_WIDTH}"),
                    ));
                }
            }
            let next = match blocks.step(&self.layers, index, input)? {
                Some(shape) => shape,
                None => output_shape(kind, input, index)?,
            };
            if next.is_empty() || next.len() > MAX_WIDTH {
                return Err(Error::invalid(
                    format!("network layer {index} ({})", describe(kind)),
                    format!("gives {} values per point", next.len()),
                ));
            }
            shapes.push(next);
        }
        blocks.finish()?;
        let out = *shapes.last().expect("non-empty");
        if let Shape::Image { .. } = out {
            return Err(Error::invalid(
                "network",
                format!("ends in an image of shape {out}; add flatten and a Linear layer"),
            ));
        }
        Ok(shapes)
    }
}

/// The shape rule of every layer type.
fn output_shape(kind: &LayerKind, input: Shape, index: usize) -> Result<Shape> {
    let bad = |msg: String| Error::invalid(format!("network layer {index} ({})", describe(kind)), msg);
    Ok(match (*kind, input) {
        (LayerKind::Linear { outputs, .. }, Shape::Flat(_)) => Shape::Flat(outputs),
        (LayerKind::Linear { .. }, Shape::Image { .. }) => {
            return Err(bad(format!("a Linear layer needs a flat input, got an image {input}; add flatten before it")));
        }
        (LayerKind::Conv2d { out_c, kernel, stride, pad, .. }, Shape::Image { c, h, w }) => {
            if kernel == 0 || stride == 0 || out_c == 0 {
                return Err(bad("kernel, stride and output channels must be at least 1".into()));
            }
            let padded = |side: usize| side.saturating_add(pad.saturating_mul(2));
            if c.saturating_mul(padded(h)).saturating_mul(padded(w)) > MAX_WIDTH {
                return Err(bad(format!(
                    "padding {pad} makes the padded input of {input} larger than {MAX_WIDTH} values"
                )));
            }
            if kernel > h + 2 * pad || kernel > w + 2 * pad {
                return Err(bad(format!(
                    "kernel {kernel}x{kernel} is larger than the padded input {}x{} (input {input}, padding {pad})",
                    h + 2 * pad,
                    w + 2 * pad
                )));
            }
            Shape::Image { c: out_c, h: (h + 2 * pad - kernel) / stride + 1, w: (w + 2 * pad - kernel) / stride + 1 }
        }
        (LayerKind::Conv2d { .. }, Shape::Flat(_)) => {
            return Err(bad(format!("a Conv2d layer needs an image input (CxHxW), got a flat {input}")));
        }
        (LayerKind::AvgPool2d { kernel }, Shape::Image { c, h, w }) => {
            if kernel == 0 || kernel > h || kernel > w {
                return Err(bad(format!("pool size {kernel} does not fit the input {input}")));
            }
            Shape::Image { c, h: h / kernel, w: w / kernel }
        }
        (LayerKind::AvgPool2d { .. }, Shape::Flat(_)) => {
            return Err(bad(format!("pooling needs an image input, got a flat {input}")));
        }
        (LayerKind::Act(_), s) => s,
        (LayerKind::Flatten, s) => Shape::Flat(s.len()),
        (LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd, _) => {
            unreachable!("the residual markers' shapes come from residual::Blocks")
        }
    })
}

impl LayerKind {
    /// (weight shape, bias shape) in PyTorch's layout, for a layer with input `input`.
    pub fn param_shapes(&self, input: Shape) -> Option<(Vec<usize>, Option<Vec<usize>>)> {
        match (*self, input) {
            (LayerKind::Linear { outputs, bias }, s) => Some((vec![outputs, s.len()], bias.then(|| vec![outputs]))),
            (LayerKind::Conv2d { out_c, kernel, bias, .. }, Shape::Image { c, .. }) => {
                Some((vec![out_c, c, kernel, kernel], bias.then(|| vec![out_c])))
            }
            _ => None,
        }
    }

    /// PyTorch's default bound for uniform initialisation, 1 / sqrt(fan_in).
    fn init_bound(&self, input: Shape) -> f32 {
        let fan_in = match (*self, input) {
            (LayerKind::Conv2d { kernel, .. }, Shape::Image { c, .. }) => c * kernel * kernel,
            (_, s) => s.len(),
        };
        1.0 / (fan_in as f32).sqrt()
    }
}

/// A layer with borrowed parameters: what the CPU executor and the definitions read.
#[derive(Clone, Copy, Debug)]
pub struct LayerView<'a> {
    pub kind: LayerKind,
    /// Shape of the layer's input.
    pub input: Shape,
    /// Shape of the layer's output.
    pub output: Shape,
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// A network with borrowed parameters (see [`LayerView`]).
#[derive(Clone, Debug)]
pub struct NetView<'a> {
    pub input: Shape,
    pub layers: Vec<LayerView<'a>>,
    pub head: Head,
    /// Output width K.
    pub outputs: usize,
}

impl LayerView<'_> {
    pub fn output_shape(&self) -> Shape {
        self.output
    }

    /// The convolution geometry for a batch of n points (Conv2d layers only).
    pub fn conv_geom(&self, batch: usize) -> Option<ops::ConvGeom> {
        match (self.kind, self.input) {
            (LayerKind::Conv2d { out_c, kernel, stride, pad, .. }, Shape::Image { c, h, w }) => {
                Some(ops::ConvGeom { batch, in_c: c, in_h: h, in_w: w, out_c, kh: kernel, kw: kernel, stride, pad })
            }
            _ => None,
        }
    }

    /// Number of parameters (weight then bias).
    pub fn param_count(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// Multiply-adds of one point's forward pass.
    pub fn macs(&self) -> u64 {
        match self.kind {
            LayerKind::Linear { .. } => self.weight.len() as u64,
            LayerKind::Conv2d { .. } => self.conv_geom(1).map_or(0, |g| g.macs()),
            _ => 0,
        }
    }
}

impl NetView<'_> {
    pub fn input_dim(&self) -> usize {
        self.input.len()
    }

    pub fn param_count(&self) -> usize {
        self.layers.iter().map(LayerView::param_count).sum()
    }

    /// Where each layer's parameters start in the packed layout ([`NetworkInternals::pack_params`]).
    pub fn param_offsets(&self) -> Vec<usize> {
        param_offsets(self.layers.iter().map(LayerView::param_count))
    }
}

/// Running sums of per-layer parameter counts: each layer's offset in the packed layout.
fn param_offsets(counts: impl Iterator<Item = usize>) -> Vec<usize> {
    counts
        .scan(0, |at, count| {
            let start = *at;
            *at += count;
            Some(start)
        })
        .collect()
}

impl Layer {
    pub fn view(&self) -> LayerView<'_> {
        LayerView { kind: self.kind, input: self.input, output: self.output, weight: &self.weight, bias: &self.bias }
    }

    pub fn output_shape(&self) -> Shape {
        self.view().output_shape()
    }

    /// The convolution geometry for a batch of n points (Conv2d layers only).
    pub fn conv_geom(&self, batch: usize) -> Option<ops::ConvGeom> {
        self.view().conv_geom(batch)
    }

    /// Number of parameters (weight then bias).
    pub fn param_count(&self) -> usize {
        self.view().param_count()
    }

    /// Multiply-adds of one point's forward pass.
    pub fn macs(&self) -> u64 {
        self.view().macs()
    }
}

impl Network {
    /// Builds a network from an architecture and per-layer (weight, bias) values, checking
    /// every shape and that every parameter is finite. `params` has one entry per layer
    /// (empty vectors for parameter-free layers).
    pub fn new(arch: &Architecture, params: Vec<(Vec<f32>, Vec<f32>)>) -> Result<Self> {
        let shapes = arch.shapes()?;
        if params.len() != arch.layers.len() {
            return Err(Error::invalid(
                "network",
                format!("{} parameter sets for {} layers", params.len(), arch.layers.len()),
            ));
        }
        let mut layers = Vec::with_capacity(arch.layers.len());
        for (index, ((kind, (weight, bias)), input)) in arch.layers.iter().zip(params).zip(&shapes).enumerate() {
            let (wshape, bshape) = kind.param_shapes(*input).unwrap_or_default();
            let expect_w: usize = if wshape.is_empty() { 0 } else { wshape.iter().product() };
            let expect_b: usize = bshape.as_ref().map_or(0, |b| b.iter().product());
            let name = format!("network layer {index} ({})", describe(kind));
            if weight.len() != expect_w || bias.len() != expect_b {
                return Err(Error::invalid(
                    name,
                    format!(
                        "needs weight {wshape:?} and bias {bshape:?}, got {} and {} values",
                        weight.len(),
                        bias.len()
                    ),
                ));
            }
            if let Some(i) = weight.iter().chain(&bias).position(|v| !v.is_finite()) {
                return Err(Error::invalid(name, format!("parameter {i} is not finite")));
            }
            layers.push(Layer { kind: *kind, input: *input, output: shapes[index + 1], weight, bias });
        }
        Ok(Network { input: arch.input, layers, head: arch.head, outputs: shapes.last().map_or(0, Shape::len) })
    }

    /// Random parameters with PyTorch's default initialisation (weights and biases
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from Philox in layer order, weight before
    /// bias, so a seed always gives the same network (and an MLP the same weights as
    /// `ebm init-mlp` gave).
    pub fn random(arch: &Architecture, seed: u64) -> Result<Self> {
        let shapes = arch.shapes()?;
        let mut counter = 0u32;
        let mut uniform = |bound: f32| {
            let u = crate::rng::uniform4(seed, counter, 0, crate::rng::Stream::Init, u32::MAX)[0];
            counter = counter.wrapping_add(1);
            (2.0 * u - 1.0) * bound
        };
        let params = arch
            .layers
            .iter()
            .zip(&shapes)
            .map(|(kind, input)| match kind.param_shapes(*input) {
                None => (Vec::new(), Vec::new()),
                Some((w, b)) => {
                    let bound = kind.init_bound(*input);
                    let weight = (0..w.iter().product::<usize>()).map(|_| uniform(bound)).collect();
                    let bias = (0..b.map_or(0, |b| b[0])).map(|_| uniform(bound)).collect();
                    (weight, bias)
                }
            })
            .collect();
        Network::new(arch, params)
    }

    /// The first `layers` layers as a network of their own, outputs f (head `lse` when there are
    /// several, else `f`): the representation below a projection head, for a linear probe.
    pub fn truncated(&self, layers: usize) -> Result<Self> {
        let kept = &self.layers[..layers.min(self.layers.len())];
        let k = kept.last().map_or(self.input, |l| l.output).len();
        let arch = Architecture {
            input: self.input,
            layers: kept.iter().map(|l| l.kind).collect(),
            head: if k == 1 { Head::F } else { Head::LogSumExp },
        };
        Network::new(&arch, kept.iter().map(|l| (l.weight.clone(), l.bias.clone())).collect())
    }

    pub fn architecture(&self) -> Architecture {
        Architecture { input: self.input, layers: self.layers.iter().map(|l| l.kind).collect(), head: self.head }
    }

    /// The input dimension d = C·H·W of the points the energy takes.
    pub fn input_dim(&self) -> usize {
        self.input.len()
    }

    /// The output width K (1 for an energy network, the classes of a classifier).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Number of parameters (weights and biases of every layer).
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(Layer::param_count).sum()
    }

    /// The text form of the architecture.
    /// The same network with another head, checked against its outputs (`class:Y` needs
    /// Y < K, `f` and `-f` one output).
    pub fn with_head(&self, head: Head) -> Result<Self> {
        let mut arch = self.architecture();
        arch.head = head;
        arch.shapes()?;
        Ok(Self { head, ..self.clone() })
    }

    pub fn spec(&self) -> String {
        self.architecture().to_string()
    }
}
