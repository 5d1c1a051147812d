//! Slices (`slices` of a sum): an expert that looks at some dimensions only, E(x) =
//! E_inner(x[indices]), its gradient scattered back. The generated WGSL
//! ([`slice_wgsl_function`]) follows [`slice_energy_grad`], with the analytic energies'
//! functions specialised to the slice's dimension ([`specialise_wgsl`]).

use super::Energy;
use crate::num::Field;

/// What is wrong with `indices` as the slice of a term of dimension `inner_dim` in a sum of
/// dimension `dim`, if anything (the spec parser names the field, [`Energy::validate`] checks
/// hand-built energies).
pub fn slice_problem(indices: &[usize], dim: usize, inner_dim: usize) -> Option<String> {
    if indices.is_empty() {
        return Some("is empty: a sliced term looks at one dimension or more".into());
    }
    // The kernels read the indices as f32 from the parameter block, exact below 2^24.
    if dim > 1 << 24 {
        return Some(format!("slices need a dimension of at most 2^24, not {dim}"));
    }
    if let Some(&i) = indices.iter().find(|&&i| i >= dim) {
        return Some(format!("index {i} is out of range for dimension {dim}"));
    }
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Some(format!("index {} appears twice", w[0]));
    }
    (indices.len() != inner_dim)
        .then(|| format!("has {} indices but the term has dimension {inner_dim}", indices.len()))
}

/// E_inner(x[indices]) with weight * its gradient scattered into g, where `inner(xs, gs)`
/// returns E(xs) and adds dE/dxs to gs (zeroed): the one formula of [`Energy::Slice`], which
/// the WGSL of [`slice_wgsl_function`] follows.
#[inline(always)]
pub(crate) fn slice_energy_grad<T: Field>(
    indices: &[usize],
    x: &[T],
    g: &mut [T],
    weight: T,
    inner: impl FnOnce(&[T], &mut [T]) -> T,
) -> T {
    let k = indices.len();
    let mut small = [T::zero(); 64];
    let mut large = Vec::new();
    let scratch: &mut [T] = if 2 * k <= small.len() {
        &mut small[..2 * k]
    } else {
        large.resize(2 * k, T::zero());
        &mut large
    };
    let (xs, gs) = scratch.split_at_mut(k);
    for (v, &i) in xs.iter_mut().zip(indices) {
        *v = x[i];
    }
    let e = inner(xs, gs);
    for (&v, &i) in gs.iter().zip(indices) {
        g[i] += weight * v;
    }
    weight * e
}

/// The WGSL function `name(x, g, base, weight)` of an [`Energy::Slice`] of `k` indices whose
/// parameters (the indices, then the inner energy's) start at `base`: gathers x[indices] into
/// an `array<f32, DIM_k>`, evaluates the inner energy's calls on it and scatters the gradient.
/// The inner energy's code is written for `DIM` and then specialised to k
/// ([`specialise_wgsl`]), with a copy of the analytic energies for k added once to `functions`.
pub(crate) fn slice_wgsl_function(name: &str, k: usize, inner: &Energy, base: usize, functions: &mut String) -> String {
    let start = functions.len();
    let (mut inner_base, mut calls) = (base + k, String::new());
    inner.wgsl_calls(1.0, &mut inner_base, &mut calls, functions);
    let generated = specialise_wgsl(&functions[start..], k);
    functions.truncate(start);
    // Module-scope declarations may come in any order, so the copy can follow its users.
    if !functions.contains(&format!("const DIM_{k}: u32")) {
        functions.push_str(&format!("const DIM_{k}: u32 = {k}u;\n{}\n", specialise_wgsl(&analytic_wgsl(), k)));
    }
    functions.push_str(&generated);
    let calls = specialise_wgsl(&calls, k);
    format!(
        "fn {name}(x_in: ptr<function, array<f32, DIM>>, g_in: ptr<function, array<f32, DIM>>, base: u32, weight: f32) -> f32 {{\n    \
         var xs: array<f32, DIM_{k}>;\n    var gs: array<f32, DIM_{k}>;\n    \
         for (var i = 0u; i < DIM_{k}; i++) {{ xs[i] = (*x_in)[u32(energy_params[base + i])]; }}\n    var e = 0.0;\n    \
         {{\n        let x = &xs;\n        let g = &gs;\n    {calls}    }}\n    \
         for (var i = 0u; i < DIM_{k}; i++) {{ (*g_in)[u32(energy_params[base + i])] += weight * gs[i]; }}\n    \
         return weight * e;\n}}\n"
    )
}

/// WGSL written for points of dimension `DIM`, rewritten for dimension k: the identifier `DIM`
/// becomes `DIM_k` and the functions of the analytic energies' WGSL files their `_dk` copies
/// (WGSL has no generics; this is the same code specialised, as pipelines specialise sizes).
fn specialise_wgsl(text: &str, k: usize) -> String {
    let analytic = analytic_wgsl();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let analytic_fns: Vec<&str> = analytic.lines().filter_map(|l| l.strip_prefix("fn ")?.split('(').next()).collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        let end = rest[start..].find(|c: char| !is_ident(c)).map_or(rest.len(), |e| start + e);
        let word = &rest[start..end];
        match word {
            "DIM" => out.push_str(&format!("DIM_{k}")),
            w if analytic_fns.contains(&w) => out.push_str(&format!("{w}_d{k}")),
            w => out.push_str(w),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The text of every WGSL file the generated energy module imports ([`super::term::wgsl_files`]).
fn analytic_wgsl() -> String {
    let source = |name: &str| crate::gpu::shader::SOURCES.iter().find(|(n, _)| *n == name).expect("bundled").1;
    super::term::wgsl_files().into_iter().map(source).collect::<Vec<_>>().join("\n")
}
