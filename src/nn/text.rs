//! The text form of an architecture: [`Architecture::parse`] and its `Display`, which writes
//! what `parse` reads back.

use super::{Activation, Architecture, Head, LayerKind, Shape};
use crate::{Error, Result};
use std::fmt;

pub(super) fn describe(kind: &LayerKind) -> String {
    match *kind {
        LayerKind::Linear { outputs, bias } => format!("{outputs}{}", if bias { "" } else { ":nobias" }),
        LayerKind::Conv2d { out_c, kernel, stride, pad, bias } => {
            format!("{out_c}k{kernel}s{stride}p{pad}{}", if bias { "" } else { ":nobias" })
        }
        LayerKind::Act(a) => a.name(),
        LayerKind::Flatten => "flatten".into(),
        LayerKind::AvgPool2d { kernel } => format!("avgpool:{kernel}"),
        LayerKind::ResBegin => "res(".into(),
        LayerKind::ResProj => ";proj:".into(),
        LayerKind::ResEnd => "res end".into(),
    }
}

impl fmt::Display for Architecture {
    /// The text form [`Architecture::parse`] reads back: `/` between top-level layers, a
    /// residual block as `res(A,B,...[;proj:P])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.input)?;
        // depth: open blocks; fresh: the next layer opens a block's body or projection.
        let (mut depth, mut fresh) = (0usize, false);
        let sep = |f: &mut fmt::Formatter<'_>, depth: usize, fresh: &mut bool| match std::mem::take(fresh) {
            true => Ok(()),
            false => f.write_str(if depth > 0 { "," } else { "/" }),
        };
        for l in &self.layers {
            match l {
                LayerKind::ResBegin => {
                    sep(f, depth, &mut fresh)?;
                    f.write_str("res(")?;
                    depth += 1;
                    fresh = true;
                }
                LayerKind::ResProj => {
                    f.write_str(";proj:")?;
                    fresh = true;
                }
                LayerKind::ResEnd => {
                    f.write_str(")")?;
                    depth = depth.saturating_sub(1);
                }
                other => {
                    sep(f, depth, &mut fresh)?;
                    f.write_str(&describe(other))?;
                }
            }
        }
        write!(f, "/head:{}", self.head.text())
    }
}

/// Splits `text` at the `sep`s outside parentheses, each part trimmed; unbalanced parentheses
/// are an error.
fn split_top(text: &str, sep: char) -> Result<Vec<&str>> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    Error::invalid("network", format!("{text:?}: a ')' at character {i} closes no '('"))
                })?
            }
            c if c == sep && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(Error::invalid("network", format!("{text:?}: {depth} '(' not closed")));
    }
    parts.push(text[start..].trim());
    Ok(parts)
}

/// The form of a residual block, for messages.
const RES_FORM: &str = "res(LAYER,LAYER,...) or res(LAYER,...;proj:OCk1[sS]) or res(LAYER,...;proj:avgpool:K)";

/// Deepest nesting of residual blocks the text form takes (the parser recurses per level).
const MAX_DEPTH: usize = 32;

/// Appends one segment's layers: a single layer, or a residual block `res(A,B,...[;proj:P])`
/// as its flat markers (see [`super::residual`]), blocks nesting; `depth` counts the blocks
/// around the segment.
fn push_layer(segment: &str, layers: &mut Vec<LayerKind>, depth: usize) -> Result<()> {
    let begin = layers.len();
    let bad =
        |msg: String| Err(Error::invalid("network", format!("residual block {segment:?} (layer {begin}): {msg}")));
    let Some(inner) = segment.strip_prefix("res(") else {
        if segment.contains(['(', ')', ',', ';']) {
            return Err(Error::invalid(
                "network",
                format!("segment {segment:?} (layer {begin}): a residual block is written {RES_FORM}"),
            ));
        }
        layers.push(parse_layer(segment, begin)?);
        return Ok(());
    };
    let Some(inner) = inner.strip_suffix(')') else {
        return bad(format!("text follows its closing ')'; expected {RES_FORM}"));
    };
    if depth >= MAX_DEPTH {
        return bad(format!("blocks nest more than {MAX_DEPTH} deep"));
    }
    let parts = split_top(inner, ';')?;
    let (body, proj) = match parts.as_slice() {
        [body] => (*body, None),
        [body, proj] => (*body, Some(*proj)),
        _ => return bad(format!("more than one ';'; expected {RES_FORM}")),
    };
    layers.push(LayerKind::ResBegin);
    for item in split_top(body, ',')? {
        if item.is_empty() {
            return bad(format!("an empty layer in the block's body; expected {RES_FORM}"));
        }
        if item.contains('/') && !item.starts_with("res(") {
            return bad(format!("{item:?}: inside a block, layers are separated by ',' ({RES_FORM})"));
        }
        push_layer(item, layers, depth + 1)?;
    }
    if let Some(proj) = proj {
        let Some(p) = proj.strip_prefix("proj:") else {
            return bad(format!("{proj:?} after ';': expected proj:OCk1[sS] (a 1x1 Conv2d) or proj:avgpool:K"));
        };
        layers.push(LayerKind::ResProj);
        match parse_layer(p, layers.len())? {
            kind @ (LayerKind::Conv2d { .. } | LayerKind::AvgPool2d { .. }) => layers.push(kind),
            _ => return bad(format!("projection {p:?}: expected a Conv2d (e.g. 32k1s2) or avgpool:K")),
        }
    }
    layers.push(LayerKind::ResEnd);
    Ok(())
}

fn parse_usize(s: &str, what: &str, segment: &str) -> Result<usize> {
    s.parse::<usize>()
        .map_err(|_| Error::invalid("network", format!("segment {segment:?}: {what} {s:?} is not a whole number")))
}

/// `OCkK[sS][pP]`: returns (out_c, kernel, stride, pad) or None when the text is not of this form.
/// `layer` is the segment's index in the layer list (for messages).
fn parse_conv(body: &str, segment: &str, layer: usize) -> Result<Option<(usize, usize, usize, usize)>> {
    let Some((oc, rest)) = body.split_once('k') else { return Ok(None) };
    if oc.is_empty() || !oc.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let out_c = parse_usize(oc, "output channels", segment)?;
    // rest = K[sS][pP]
    let mut fields = [None, Some(1usize), Some(0usize)];
    let mut current = 0;
    let mut digits = String::new();
    let mut flush = |current: usize, digits: &mut String| -> Result<()> {
        if digits.is_empty() {
            return Err(Error::invalid(
                "network",
                format!("segment {segment:?}: a number is missing (conv form OCkK[sS][pP], e.g. 16k5s2p4)"),
            ));
        }
        fields[current] = Some(parse_usize(digits, "conv size", segment)?);
        digits.clear();
        Ok(())
    };
    let mut seen = [false; 3];
    for ch in rest.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            's' | 'p' => {
                flush(current, &mut digits)?;
                let (i, what) = if ch == 's' { (1, "stride") } else { (2, "padding") };
                if std::mem::replace(&mut seen[i], true) {
                    // Two strides (or paddings) are a typo, not "the last one wins".
                    return Err(Error::invalid(
                        "network",
                        format!(
                            "layer {layer} ({segment:?}): the {what} '{ch}' is given twice; give k, s and p once each \
                             (conv form OCkK[sS][pP], e.g. 16k5s2p4)"
                        ),
                    ));
                }
                current = if ch == 's' { 1 } else { 2 };
            }
            _ => {
                return Err(Error::invalid(
                    "network",
                    format!("segment {segment:?}: unexpected {ch:?} (conv form OCkK[sS][pP], e.g. 16k5s2p4)"),
                ));
            }
        }
    }
    flush(current, &mut digits)?;
    Ok(Some((out_c, fields[0].unwrap_or(0), fields[1].unwrap_or(1), fields[2].unwrap_or(0))))
}

/// One layer segment (not a residual block) as a [`LayerKind`]; `index` is its position in
/// the flat layer list (for messages).
fn parse_layer(segment: &str, index: usize) -> Result<LayerKind> {
    let (body, bias) = match segment.strip_suffix(":nobias") {
        Some(b) => (b, false),
        None => (segment, true),
    };
    Ok(if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        LayerKind::Linear { outputs: parse_usize(body, "outputs", segment)?, bias }
    } else if let Some((out_c, kernel, stride, pad)) = parse_conv(body, segment, index)? {
        LayerKind::Conv2d { out_c, kernel, stride, pad, bias }
    } else if !bias {
        return Err(Error::invalid(
            "network",
            format!("segment {segment:?}: only Linear and Conv2d layers have a bias to drop"),
        ));
    } else if body == "flatten" {
        LayerKind::Flatten
    } else if let Some(k) = body.strip_prefix("avgpool") {
        let k = k.strip_prefix(':').unwrap_or(if k.is_empty() { "2" } else { k });
        LayerKind::AvgPool2d { kernel: parse_usize(k, "pool size", segment)? }
    } else {
        LayerKind::Act(Activation::parse(body).map_err(|e| {
            if Activation::is_name(body) {
                // A known activation with a bad parameter: its own message.
                return Error::invalid("network", format!("layer {}: {e}", index));
            }
            Error::invalid(
                "network",
                format!(
                    "unknown layer {segment:?} (layer {}): expected N (Linear), OCkK[sS][pP] (Conv2d), flatten, avgpool:K, res(...), an activation \
                     (relu, leaky_relu[:a], silu, swish, tanh, softplus, elu[:a]) or head:f|-f|lse|class:Y",
                    index
                ),
            )
        })?)
    })
}

impl Architecture {
    /// Parses the text form, e.g. `1x28x28/16k5s2p4/swish/32k3s2p1/swish/flatten/64/swish/1/head:-f`:
    /// the input shape (`D` or `CxHxW`), then `/`-separated layers — `N` a Linear to N outputs,
    /// `OCkK[sS][pP]` a Conv2d (stride 1 and padding 0 unless given), either with `:nobias`,
    /// an activation name (relu, leaky_relu\[:slope\], silu|swish, tanh, softplus, elu\[:alpha\]),
    /// `flatten`, `avgpool:K`, a residual block `res(A,B,...)` (y = x + F(x), F the
    /// `,`-separated layers A, B, ...; blocks nest) or `res(A,...;proj:P)` (y = P(x) + F(x), P a
    /// Conv2d such as `32k1s2` or `avgpool:K`, see [`super::residual`]) — and optionally the
    /// head last: `head:f` (E = f), `head:-f` (E = -f), `head:lse` (E = -logsumexp f, the JEM
    /// energy), `head:class:Y` (E = -f\[Y\]).
    /// Without a head, K = 1 networks get `f` and wider ones `lse`. A leading `conv:` or
    /// `net:` is ignored. The shapes are checked ([`Architecture::shapes`]).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let text = text.strip_prefix("conv:").or_else(|| text.strip_prefix("net:")).unwrap_or(text);
        let mut segments = split_top(text, '/')?.into_iter();
        let first = segments.next().unwrap_or("");
        let dims: Vec<&str> = first.split('x').collect();
        let input = match dims.as_slice() {
            [d] => Shape::Flat(parse_usize(d, "input width", first)?),
            [c, h, w] => Shape::Image {
                c: parse_usize(c, "channels", first)?,
                h: parse_usize(h, "height", first)?,
                w: parse_usize(w, "width", first)?,
            },
            _ => {
                return Err(Error::invalid(
                    "network",
                    format!("input shape {first:?}: expected D or CxHxW (e.g. 2 or 1x28x28)"),
                ));
            }
        };
        let mut layers = Vec::new();
        let mut head = None;
        for segment in segments {
            if head.is_some() {
                return Err(Error::invalid(
                    "network",
                    format!("segment {segment:?} after the head: the head comes last"),
                ));
            }
            if let Some(h) = segment.strip_prefix("head:") {
                head = Some(Head::parse(h)?);
                continue;
            }
            push_layer(segment, &mut layers, 0)?;
        }
        let mut arch = Architecture { input, layers, head: Head::F };
        let k = arch.layer_shapes()?.last().map_or(0, Shape::len);
        arch.head = head.unwrap_or(if k == 1 { Head::F } else { Head::LogSumExp });
        arch.shapes()?;
        Ok(arch)
    }
}
