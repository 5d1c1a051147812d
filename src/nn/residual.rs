//! Residual blocks y = x + F(x), or y = P(x) + F(x) with a projection P of the skip (a 1x1
//! Conv2d with the stride needed, or an average pool) where F changes the shape.
//!
//! A block is three parameter-free marker layers in the one flat layer list, around ordinary
//! layers: `ResBegin`, the body F, [`ResProj`, P], `ResEnd`. Executors keep a stack of saved
//! values: `ResBegin` saves its input (the skip) and passes it on; `ResProj` saves the body's
//! output and passes the skip on to P, an ordinary layer; `ResEnd` adds the saved value to its
//! input. Why flat markers rather than a nested block: every layer type stays one `Copy` kind
//! with one input shape, so the projection is an ordinary Conv2d/AvgPool2d that every executor
//! (CPU, f64 reference, GPU, jets) and the parameter layout already handle, and each executor
//! adds only a stack (the markers are linear, so the jets need nothing else). Blocks nest.
//! The reverse pass mirrors the stack with gradients: `ResEnd` saves dy for the skip,
//! `ResProj` swaps, `ResBegin` adds the saved gradient.
//!
//! Text: `res(16k3p1,silu,16k3p1)`, `res(32k3s2p1,silu,32k3p1;proj:32k1s2)`,
//! `res(...;proj:avgpool:2)`. PyTorch: a `Residual(nn.Module)` with `body` (nn.Sequential)
//! and `proj` (absent, nn.Conv2d or nn.AvgPool2d), forward `body(x) + (proj(x) if proj else x)`;
//! in an outer nn.Sequential at index m its parameters are `m.body.i.weight` and
//! `m.proj.weight` ([`param_stems`]).
//!
//! [`ResProj`]: super::LayerKind::ResProj

use super::{LayerKind, Shape, describe};
use crate::num::Real;
use crate::{Error, Result};

/// One block opened and not yet closed while walking a layer list.
struct Open {
    begin: usize,
    skip: Shape,
    /// The `ResProj` layer's index and the body's output shape, once the body has ended.
    branch: Option<(usize, Shape)>,
}

/// The shape rule of the markers and the block structure, walked layer by layer.
#[derive(Default)]
pub(super) struct Blocks {
    open: Vec<Open>,
}

fn block_error(begin: usize, msg: String) -> Error {
    Error::invalid(format!("network residual block at layer {begin}"), msg)
}

impl Blocks {
    /// The output shape of layer `index` (input `input`) when it is a marker, None otherwise;
    /// checks the structure around it.
    pub(super) fn step(&mut self, layers: &[LayerKind], index: usize, input: Shape) -> Result<Option<Shape>> {
        let next = |i: usize| layers.get(index + i).copied();
        Ok(Some(match layers[index] {
            LayerKind::ResBegin => {
                if matches!(next(1), None | Some(LayerKind::ResProj | LayerKind::ResEnd)) {
                    return Err(block_error(index, "its body is empty (y = 2x is no block)".into()));
                }
                self.open.push(Open { begin: index, skip: input, branch: None });
                input
            }
            LayerKind::ResProj => {
                let Some(open) = self.open.last_mut().filter(|o| o.branch.is_none()) else {
                    return Err(Error::invalid(
                        format!("network layer {index}"),
                        "a projection outside a residual block, or a block's second projection",
                    ));
                };
                if !matches!(next(1), Some(LayerKind::Conv2d { .. } | LayerKind::AvgPool2d { .. }))
                    || next(2) != Some(LayerKind::ResEnd)
                {
                    return Err(block_error(
                        open.begin,
                        format!(
                            "its projection (layer {index}) must be one Conv2d or AvgPool2d layer, then the block's end"
                        ),
                    ));
                }
                open.branch = Some((index, input));
                open.skip
            }
            LayerKind::ResEnd => {
                let Some(open) = self.open.pop() else {
                    return Err(Error::invalid(
                        format!("network layer {index}"),
                        "the end of a residual block that was not begun",
                    ));
                };
                match open.branch {
                    None if input != open.skip => {
                        return Err(block_error(
                            open.begin,
                            format!(
                                "the body turns the input {} into {input}, which the skip ({}) cannot be added to; \
                                 give a projection (;proj:OCk1[sS] or ;proj:avgpool:K) or keep the shape",
                                open.skip, open.skip
                            ),
                        ));
                    }
                    Some((p, branch)) if input != branch => {
                        return Err(block_error(
                            open.begin,
                            format!(
                                "its projection ({}) turns the skip {} into {input}, but the body gives {branch}",
                                describe(&layers[p + 1]),
                                open.skip
                            ),
                        ));
                    }
                    _ => input,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// Every block must be closed at the end of the list.
    pub(super) fn finish(&self) -> Result<()> {
        match self.open.last() {
            Some(open) => Err(block_error(open.begin, "is not closed".into())),
            None => Ok(()),
        }
    }
}

/// The PyTorch state_dict stem of every layer (`3`, `3.body.0`, `3.proj`), for an nn.Sequential
/// holding `Residual` modules ([module docs](self)); None for the markers.
pub fn param_stems(layers: &[LayerKind]) -> Vec<Option<String>> {
    // (module path, next child index) per open level; the top level's path is empty.
    let mut levels: Vec<(String, usize)> = vec![(String::new(), 0)];
    let mut proj_next = false;
    let mut stems = Vec::with_capacity(layers.len());
    for kind in layers {
        let (path, child) = levels.last().cloned().unwrap_or_default();
        let name = |tail: &str| if path.is_empty() { tail.to_string() } else { format!("{path}.{tail}") };
        match kind {
            LayerKind::ResBegin => {
                stems.push(None);
                levels.push((format!("{}.body", name(&child.to_string())), 0));
            }
            LayerKind::ResProj => {
                stems.push(None);
                proj_next = true;
            }
            LayerKind::ResEnd => {
                stems.push(None);
                levels.pop();
                if let Some(level) = levels.last_mut() {
                    level.1 += 1;
                }
            }
            _ if std::mem::take(&mut proj_next) => {
                let block = path.strip_suffix(".body").unwrap_or(&path);
                stems.push(Some(format!("{block}.proj")));
            }
            _ => {
                stems.push(Some(name(&child.to_string())));
                if let Some(level) = levels.last_mut() {
                    level.1 += 1;
                }
            }
        }
    }
    stems
}

/// Whether a layer is one of the residual markers.
pub fn is_marker(kind: &LayerKind) -> bool {
    matches!(kind, LayerKind::ResBegin | LayerKind::ResProj | LayerKind::ResEnd)
}

/// The forward pass of marker layer `k` over whole tensors (any number of rows, the jets'
/// stacked rows included): `values[k]` is its input, `values[k + 1]` gets its output, and
/// `saved` holds the indices in `values` of the saved tensors.
pub(crate) fn forward<T: Real>(kind: LayerKind, k: usize, values: &mut [Vec<T>], saved: &mut Vec<usize>) {
    let (done, rest) = values.split_at_mut(k + 1);
    let y = &mut rest[0];
    y.clear();
    match kind {
        LayerKind::ResBegin => {
            y.extend_from_slice(&done[k]);
            saved.push(k);
        }
        LayerKind::ResProj => {
            let skip = saved.pop().expect("checked by the shape rule");
            y.extend_from_slice(&done[skip]);
            saved.push(k);
        }
        LayerKind::ResEnd => {
            let other = &done[saved.pop().expect("checked by the shape rule")];
            y.extend(done[k].iter().zip(other).map(|(&a, &b)| a + b));
        }
        _ => unreachable!("not a residual marker"),
    }
}

/// The reverse pass's stack of saved gradients; its buffers are reused from call to call.
pub(crate) struct GradStack<T> {
    bufs: Vec<Vec<T>>,
    depth: usize,
}

impl<T> Default for GradStack<T> {
    fn default() -> Self {
        Self { bufs: Vec::new(), depth: 0 }
    }
}

impl<T: Real> GradStack<T> {
    pub(crate) fn clear(&mut self) {
        self.depth = 0;
    }

    /// dx = dL/d(input) of marker `kind` from dy = dL/d(output); `dx` has the input's length.
    pub(crate) fn backward(&mut self, kind: LayerKind, dy: &[T], dx: &mut [T]) {
        match kind {
            LayerKind::ResEnd => {
                if self.bufs.len() == self.depth {
                    self.bufs.push(Vec::new());
                }
                let top = &mut self.bufs[self.depth];
                top.clear();
                top.extend_from_slice(dy);
                self.depth += 1;
                dx.copy_from_slice(dy);
            }
            LayerKind::ResProj => {
                // The body's output gets the saved gradient; the skip (this output) is saved.
                let top = &mut self.bufs[self.depth - 1];
                dx.copy_from_slice(top);
                top.clear();
                top.extend_from_slice(dy);
            }
            LayerKind::ResBegin => {
                self.depth -= 1;
                let saved = &self.bufs[self.depth];
                dx.iter_mut().zip(dy.iter().zip(saved)).for_each(|(d, (&a, &b))| *d = a + b);
            }
            _ => unreachable!("not a residual marker"),
        }
    }
}
