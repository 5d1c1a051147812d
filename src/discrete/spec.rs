//! The `--energy` spellings of discrete models:
//! - `ising:LATTICE[,beta=B][,J=J][,h=H]`, LATTICE one of `square:L` (or `LxM`),
//!   `triangular:L`, `cubic:L` (or `LxMxN`), `graph:FILE` (an edge list: lines `i,j[,J]`,
//!   `#` comments, vertices 0-based; `n=N` sites, else the largest vertex + 1);
//! - `potts:Q:LATTICE[,beta=B][,J=J]`;
//! - `bm:W.npy[,bias=B.npy][,beta=B]`: a fully visible Boltzmann machine over units in {0, 1};
//! - `hopfield:PATTERNS.npy[,beta=B]`: Hebbian couplings from rows of ±1 (or 0/1), zero
//!   temperature unless `beta` is given.
//!
//! Defaults: beta = 1, J = 1, h = 0.

use super::graph::{Graph, Lattice};
use super::{Convention, SpinModel};
use crate::{Error, Result};
use std::path::Path;

/// Whether `spec` names a discrete model (so `ebm sample` takes the discrete path).
pub fn is_discrete(spec: &str) -> bool {
    crate::energy::spec::DISCRETE_PREFIXES.iter().any(|p| spec.trim_start().starts_with(p))
}

fn bad(message: impl Into<String>) -> Error {
    Error::invalid("--energy", message)
}

/// Options after the first comma: `key=value` pairs, each key at most once and among `known`.
fn options<'a>(text: &'a str, known: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(',') {
        if part.trim().is_empty() {
            return Err(bad(format!(
                "an empty option in {text:?} (options are KEY=VALUE, separated by single commas)"
            )));
        }
        let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("option {part:?} is not KEY=VALUE")))?;
        let k = k.trim();
        if !known.contains(&k) {
            return Err(bad(format!("unknown option {k:?} (this model takes {})", known.join(", "))));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(bad(format!("option {k} is given twice")));
        }
        out.push((k, v.trim()));
    }
    Ok(out)
}

fn number(options: &[(&str, &str)], key: &str, default: f32) -> Result<f32> {
    let Some((_, v)) = options.iter().find(|(k, _)| *k == key) else { return Ok(default) };
    let x: f32 = v.parse().map_err(|_| bad(format!("{key}={v} is not a number")))?;
    if x.is_nan() || (x.is_infinite() && key != "beta") {
        return Err(bad(format!("{key}={v} is not a finite number")));
    }
    Ok(x)
}

/// The model `spec` names, or None when it is not a discrete spec.
pub fn parse(spec: &str) -> Result<Option<SpinModel>> {
    let s = spec.trim();
    if let Some(rest) = s.strip_prefix("ising:") {
        let (graph, opts) = graph_and_options(rest, &["beta", "J", "h", "n"])?;
        let beta = number(&opts, "beta", 1.0)?;
        let h = number(&opts, "h", 0.0)?;
        let field = vec![h; graph.sites];
        return SpinModel::ising(s, graph, field, beta).map(Some);
    }
    if let Some(rest) = s.strip_prefix("potts:") {
        let (q, rest) =
            rest.split_once(':').ok_or_else(|| bad("potts needs potts:Q:LATTICE, e.g. potts:3:square:32"))?;
        let q: u32 = q.trim().parse().map_err(|_| bad(format!("potts q {q:?} is not a whole number")))?;
        if !(2..=256).contains(&q) {
            return Err(bad(format!("potts q = {q}: need 2 to 256 states")));
        }
        let (graph, opts) = graph_and_options(rest, &["beta", "J", "n"])?;
        let beta = number(&opts, "beta", 1.0)?;
        if beta.is_infinite() {
            return Err(bad("potts needs a finite beta"));
        }
        return SpinModel::potts(s, q, graph, beta).map(Some);
    }
    if let Some(rest) = s.strip_prefix("bm:") {
        let (file, opts) = rest.split_once(',').unwrap_or((rest, ""));
        let opts = options(opts, &["bias", "beta"])?;
        return boltzmann_machine(s, Path::new(file.trim()), &opts).map(Some);
    }
    if let Some(rest) = s.strip_prefix("hopfield:") {
        let (file, opts) = rest.split_once(',').unwrap_or((rest, ""));
        let opts = options(opts, &["beta"])?;
        return hopfield(s, Path::new(file.trim()), number(&opts, "beta", f32::INFINITY)?).map(Some);
    }
    Ok(None)
}

fn graph_and_options<'a>(text: &'a str, known: &[&str]) -> Result<(Graph, Vec<(&'a str, &'a str)>)> {
    let (shape, rest) = text.split_once(',').unwrap_or((text, ""));
    let opts = options(rest, known)?;
    let j = number(&opts, "J", 1.0)?;
    let (kind, arg) = shape.split_once(':').ok_or_else(|| {
        bad(format!("{shape:?}: expected square:L, triangular:L, cubic:L or graph:FILE after the model name"))
    })?;
    let lattice = match kind.trim() {
        "square" => Lattice::Square,
        "triangular" => Lattice::Triangular,
        "cubic" => Lattice::Cubic,
        "graph" => {
            let n = opts.iter().find(|(k, _)| *k == "n").map(|(_, v)| *v);
            return Ok((edge_list(Path::new(arg.trim()), n, j)?, opts));
        }
        other => return Err(bad(format!("unknown lattice {other:?} (square, triangular, cubic or graph)"))),
    };
    if opts.iter().any(|(k, _)| *k == "n") {
        return Err(bad("n= is for graph:FILE; a lattice's size is its sides"));
    }
    let sides: Vec<usize> = arg
        .split('x')
        .map(|d| d.trim().parse().map_err(|_| bad(format!("lattice side {d:?} is not a whole number"))))
        .collect::<Result<_>>()?;
    let sides = if sides.len() == 1 { vec![sides[0]; lattice.rank()] } else { sides };
    let graph = Graph::lattice(lattice, &sides, j).map_err(|e| bad(e.to_string()))?;
    Ok((graph, opts))
}

/// Reads a text file through the bounded regular-file reader.
fn read_text(path: &Path, what: &str) -> Result<String> {
    let limit = crate::plan::Limit::budget_over(16, "an edge list")?;
    let bytes = crate::plan::read_file(path, what, &limit, &mut |_| Ok(None))?;
    String::from_utf8(bytes).map_err(|_| Error::format(path, format!("{what} is not UTF-8 text")))
}

/// An edge list: lines `i,j[,J]` (J defaulting to `j_default`), blank lines and `#` comments.
fn edge_list(path: &Path, n: Option<&str>, j_default: f32) -> Result<Graph> {
    let text = read_text(path, "edge list")?;
    let mut edges = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let at = |m: String| Error::format(path, format!("line {}: {m}", k + 1));
        if !(2..=3).contains(&fields.len()) {
            return Err(at(format!("expected i,j or i,j,J, got {line:?}")));
        }
        let vertex = |f: &str| f.parse::<usize>().map_err(|_| at(format!("vertex {f:?} is not a whole number")));
        let c = match fields.get(2) {
            Some(f) => f
                .parse::<f32>()
                .ok()
                .filter(|c| c.is_finite())
                .ok_or_else(|| at(format!("coupling {f:?} is not a finite number")))?,
            None => j_default,
        };
        edges.push((vertex(fields[0])?, vertex(fields[1])?, c));
    }
    if edges.is_empty() {
        return Err(Error::format(path, "the edge list has no edges"));
    }
    let sites = match n {
        Some(v) => v.parse::<usize>().map_err(|_| bad(format!("n={v} is not a whole number")))?,
        None => edges.iter().map(|&(i, j, _)| i.max(j)).max().unwrap_or(0) + 1,
    };
    Graph::from_edges(sites, &edges, &path.display().to_string())
}

fn boltzmann_machine(name: &str, file: &Path, opts: &[(&str, &str)]) -> Result<SpinModel> {
    let (w, shape) = crate::io::npy::read_f32(file)?;
    let n = match shape[..] {
        [a, b] if a == b && a > 0 => a,
        _ => return Err(Error::format(file, format!("couplings of shape {shape:?}: need a square matrix [N, N]"))),
    };
    let bias = match opts.iter().find(|(k, _)| *k == "bias") {
        Some((_, f)) => {
            let (b, bshape) = crate::io::npy::read_f32(Path::new(f))?;
            if b.len() != n {
                return Err(Error::format(Path::new(f), format!("bias of shape {bshape:?}: need {n} values")));
            }
            b
        }
        None => vec![0.0; n],
    };
    if let Some(i) = w.iter().chain(&bias).position(|v| !v.is_finite()) {
        return Err(Error::format(file, format!("value {i} is not finite")));
    }
    let dense = Graph::dense(n, &w, &file.display().to_string())?;
    // x = (s + 1) / 2: -W x_i x_j = -(W/4)(s_i s_j + s_i + s_j + 1), -b x = -(b/2)(s + 1).
    let mut graph = dense.clone();
    graph.couplings.iter_mut().for_each(|c| *c /= 4.0);
    let mut field = vec![0.0f32; n];
    let mut offset = 0.0f64;
    for i in 0..n {
        let row: f64 = dense.edges_of(i).map(|(_, c)| c as f64).sum();
        field[i] = (bias[i] as f64 / 2.0 + row / 4.0) as f32;
        offset -= bias[i] as f64 / 2.0 + row / 8.0;
    }
    let mut model = SpinModel::ising(name, graph, field, number(opts, "beta", 1.0)?)?;
    model.convention = Convention::Bits;
    model.energy_offset = offset;
    Ok(model)
}

fn hopfield(name: &str, file: &Path, beta: f32) -> Result<SpinModel> {
    let (x, shape) = crate::io::npy::read_f32(file)?;
    let n = match shape[..] {
        [p, n] if p > 0 && n > 1 => n,
        _ => return Err(Error::format(file, format!("patterns of shape {shape:?}: need [P, N] with N >= 2"))),
    };
    let bits = x.iter().all(|&v| v == 0.0 || v == 1.0);
    let patterns: Vec<Vec<i8>> = x
        .chunks_exact(n)
        .enumerate()
        .map(|(mu, row)| {
            row.iter()
                .enumerate()
                .map(|(i, &v)| match v {
                    1.0 => Ok(1),
                    -1.0 if !bits => Ok(-1),
                    0.0 if bits => Ok(-1),
                    _ => Err(Error::format(file, format!("pattern {mu}, unit {i} is {v}: patterns hold ±1 (or 0/1)"))),
                })
                .collect::<Result<Vec<i8>>>()
        })
        .collect::<Result<_>>()?;
    let mut w = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let s: i32 = patterns.iter().map(|xi| xi[i] as i32 * xi[j] as i32).sum();
                w[i * n + j] = s as f32 / n as f32;
            }
        }
    }
    let graph = Graph::dense(n, &w, &file.display().to_string())?;
    let mut model = SpinModel::ising(name, graph, vec![0.0; n], beta)?;
    model.patterns = Some(patterns);
    Ok(model)
}
