//! Shader sources and the tiny `#import` preprocessor.
//!
//! Every WGSL file under `shaders/` is compiled into the binary. A line `#import NAME` is
//! replaced by that file (or by a generated module passed in `virtual_modules`, such as the
//! `energy` module an [`crate::energy::Energy`] writes), each module at most once.

use crate::{Error, Result};

/// All shader files, by their path relative to `shaders/`.
pub const SOURCES: &[(&str, &str)] = &[
    ("common/rng.wgsl", include_str!("../../shaders/common/rng.wgsl")),
    ("common/finite.wgsl", include_str!("../../shaders/common/finite.wgsl")),
    ("common/chain.wgsl", include_str!("../../shaders/common/chain.wgsl")),
    ("common/activations.wgsl", include_str!("../../shaders/common/activations.wgsl")),
    ("common/rbm_params.wgsl", include_str!("../../shaders/common/rbm_params.wgsl")),
    ("common/nn_tile.wgsl", include_str!("../../shaders/common/nn_tile.wgsl")),
    ("common/nn_act.wgsl", include_str!("../../shaders/common/nn_act.wgsl")),
    ("common/train_step.wgsl", include_str!("../../shaders/common/train_step.wgsl")),
    ("common/langevin.wgsl", include_str!("../../shaders/common/langevin.wgsl")),
    ("energy/gaussian.wgsl", include_str!("../../shaders/energy/gaussian.wgsl")),
    ("energy/mixture.wgsl", include_str!("../../shaders/energy/mixture.wgsl")),
    ("energy/double_well.wgsl", include_str!("../../shaders/energy/double_well.wgsl")),
    ("energy/banana.wgsl", include_str!("../../shaders/energy/banana.wgsl")),
    ("energy/constraints.wgsl", include_str!("../../shaders/energy/constraints.wgsl")),
    ("energy/group.wgsl", include_str!("../../shaders/energy/group.wgsl")),
    ("energy/energy_eval.wgsl", include_str!("../../shaders/energy/energy_eval.wgsl")),
    ("sampler/langevin.wgsl", include_str!("../../shaders/sampler/langevin.wgsl")),
    ("sampler/hmc.wgsl", include_str!("../../shaders/sampler/hmc.wgsl")),
    ("sampler/rwmh.wgsl", include_str!("../../shaders/sampler/rwmh.wgsl")),
    ("sampler/tempering.wgsl", include_str!("../../shaders/sampler/tempering.wgsl")),
    ("nn/mlp_tiled.wgsl", include_str!("../../shaders/nn/mlp_tiled.wgsl")),
    ("sampler/langevin_tiled.wgsl", include_str!("../../shaders/sampler/langevin_tiled.wgsl")),
    ("common/rng_kat.wgsl", include_str!("../../shaders/common/rng_kat.wgsl")),
    ("rbm/rbm.wgsl", include_str!("../../shaders/rbm/rbm.wgsl")),
    ("rbm/rbm_update.wgsl", include_str!("../../shaders/rbm/rbm_update.wgsl")),
    ("rbm/rbm_eval.wgsl", include_str!("../../shaders/rbm/rbm_eval.wgsl")),
    ("rbm/rbm_logz.wgsl", include_str!("../../shaders/rbm/rbm_logz.wgsl")),
    ("rbm/rbm_ais.wgsl", include_str!("../../shaders/rbm/rbm_ais.wgsl")),
    ("rbm/dbm.wgsl", include_str!("../../shaders/rbm/dbm.wgsl")),
    ("train/train.wgsl", include_str!("../../shaders/train/train.wgsl")),
    ("train/train_tiled.wgsl", include_str!("../../shaders/train/train_tiled.wgsl")),
    ("train/train_layered.wgsl", include_str!("../../shaders/train/train_layered.wgsl")),
    ("train/infonce.wgsl", include_str!("../../shaders/train/infonce.wgsl")),
    ("train/side.wgsl", include_str!("../../shaders/train/side.wgsl")),
    ("nn/nn_gemm.wgsl", include_str!("../../shaders/nn/nn_gemm.wgsl")),
    ("nn/nn_conv2d.wgsl", include_str!("../../shaders/nn/nn_conv2d.wgsl")),
    ("nn/nn_elementwise.wgsl", include_str!("../../shaders/nn/nn_elementwise.wgsl")),
    ("nn/nn_head.wgsl", include_str!("../../shaders/nn/nn_head.wgsl")),
    ("sampler/langevin_layered.wgsl", include_str!("../../shaders/sampler/langevin_layered.wgsl")),
    ("sampler/restore.wgsl", include_str!("../../shaders/sampler/restore.wgsl")),
    ("energy/image_from_pixels.wgsl", include_str!("../../shaders/energy/image_from_pixels.wgsl")),
    ("discrete/config.wgsl", include_str!("../../shaders/discrete/config.wgsl")),
    ("discrete/spins.wgsl", include_str!("../../shaders/discrete/spins.wgsl")),
    ("discrete/cluster.wgsl", include_str!("../../shaders/discrete/cluster.wgsl")),
];

#[cfg(any(test, feature = "internals"))]
/// The kernel files (entry-point modules), as opposed to what they import.
pub const KERNELS: &[&str] = &[
    "energy/energy_eval.wgsl",
    "sampler/langevin.wgsl",
    "sampler/hmc.wgsl",
    "sampler/rwmh.wgsl",
    "sampler/tempering.wgsl",
    "sampler/langevin_tiled.wgsl",
    "common/rng_kat.wgsl",
    "rbm/rbm.wgsl",
    "rbm/rbm_update.wgsl",
    "rbm/rbm_eval.wgsl",
    "rbm/rbm_logz.wgsl",
    "rbm/rbm_ais.wgsl",
    "rbm/dbm.wgsl",
    "train/train.wgsl",
    "train/train_tiled.wgsl",
    "train/train_layered.wgsl",
    "train/side.wgsl",
    "nn/nn_gemm.wgsl",
    "nn/nn_conv2d.wgsl",
    "nn/nn_head.wgsl",
    "sampler/langevin_layered.wgsl",
    "nn/nn_elementwise.wgsl",
    "sampler/restore.wgsl",
    "energy/image_from_pixels.wgsl",
    "discrete/spins.wgsl",
    "discrete/cluster.wgsl",
];

fn source(name: &str) -> Option<&'static str> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Expands `#import` lines of the kernel `name`, resolving generated modules first.
pub fn assemble(name: &str, virtual_modules: &[(&str, &str)]) -> Result<String> {
    let mut out = String::new();
    let mut seen = Vec::new();
    expand(name, virtual_modules, &mut seen, &mut out)?;
    Ok(out)
}

fn expand(name: &str, virtual_modules: &[(&str, &str)], seen: &mut Vec<String>, out: &mut String) -> Result<()> {
    if seen.iter().any(|s| s == name) {
        return Ok(());
    }
    seen.push(name.to_string());
    let text = virtual_modules
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .or_else(|| source(name))
        .ok_or_else(|| Error::Shader { name: name.into(), message: "no such shader module".into() })?;
    let broken = broken(name, text);
    let text = broken.as_deref().unwrap_or(text);
    out.push_str(&format!("// ---- {name}\n"));
    for line in text.lines() {
        match line.trim().strip_prefix("#import ") {
            Some(import) => expand(import.trim(), virtual_modules, seen, out)?,
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// Shader modules `EBM_SELFTEST_BREAK=NAME` can break on purpose, so that `ebm selftest` (and
/// the test suite) can show a broken kernel failing its check: (NAME, module, text, the text
/// that replaces every occurrence). Each changes results by 0.1-1 %, far beyond the checks'
/// tolerances, and keeps the module valid WGSL.
pub const BREAKABLE: &[(&str, &str, &str, &str)] = &[
    // Every uniform (and so every normal) of the kernels' Philox streams, scaled by 0.99.
    ("rng", "common/rng.wgsl", "* (1.0 / 16777216.0)", "* (0.99 / 16777216.0)"),
    // The Gaussian energies' values (not their gradients).
    ("energy_analytic", "energy/gaussian.wgsl", "return weight * e;", "return weight * e * 1.001;"),
    // SiLU in the layer kernels and the jets.
    ("activations", "common/activations.wgsl", "return z * sigmoid(z);", "return z * sigmoid(z) * 1.001;"),
];

/// `text` of module `name` broken as `EBM_SELFTEST_BREAK` asks, or None to leave it alone.
fn broken(name: &str, text: &str) -> Option<String> {
    let wanted = std::env::var("EBM_SELFTEST_BREAK").ok()?;
    let (_, _, find, replace) =
        BREAKABLE.iter().find(|(key, module, _, _)| *module == name && wanted.split(',').any(|w| w.trim() == *key))?;
    Some(text.replace(find, replace))
}

#[cfg(any(test, feature = "internals"))]
/// Parses and validates assembled WGSL with naga (no GPU needed); the error names the module
/// and carries naga's diagnostic with the offending source span.
pub fn validate(name: &str, wgsl: &str) -> Result<naga::Module> {
    Ok(validate_with_info(name, wgsl)?.0)
}

/// [`validate`], with naga's analysis of the module (which globals each function uses).
pub fn validate_with_info(name: &str, wgsl: &str) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(wgsl)
        .map_err(|e| Error::Shader { name: name.into(), message: e.emit_to_string(wgsl) })?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| Error::Shader { name: name.into(), message: e.emit_to_string(wgsl) })?;
    Ok((module, info))
}

/// What one compute entry point asks of a device beyond its bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryNeeds {
    pub workgroup_size: [u32; 3],
    /// Bytes of the workgroup-shared variables the entry point uses.
    pub workgroup_bytes: u64,
}

/// The needs of entry point `entry` of a validated module; None if it has no such entry.
pub fn entry_needs(module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str) -> Option<EntryNeeds> {
    let (index, ep) = module.entry_points.iter().enumerate().find(|(_, e)| e.name == entry)?;
    let uses = info.get_entry_point(index);
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).ok()?;
    let workgroup_bytes = module
        .global_variables
        .iter()
        .filter(|(handle, g)| g.space == naga::AddressSpace::WorkGroup && !uses[*handle].is_empty())
        .map(|(_, g)| layouter[g.ty].size as u64)
        .sum();
    Some(EntryNeeds { workgroup_size: ep.workgroup_size, workgroup_bytes })
}

/// The bind group layout a module declares: its `@group(0)` buffers in binding order, read from
/// the module itself so no launcher writes the list by hand. Every uniform is bound with a
/// dynamic offset (the launchers' parameter slots); storage is read-write where the module
/// declares `read_write`. Bindings must be numbered 0, 1, ... without gaps, in group 0 only.
pub fn bindings_of(label: &str, module: &naga::Module) -> Result<Vec<crate::gpu::Binding>> {
    use crate::gpu::Binding;
    let mut found: Vec<(u32, Binding)> = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(at) = &var.binding else { continue };
        let what = format!("binding {} of group {}", at.binding, at.group);
        let binding = match var.space {
            _ if at.group != 0 => return Err(Error::invalid(label, format!("{what}: kernels bind group 0 only"))),
            naga::AddressSpace::Uniform => Binding::UniformDynamic,
            naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                Binding::StorageReadWrite
            }
            naga::AddressSpace::Storage { .. } => Binding::StorageRead,
            other => {
                return Err(Error::invalid(
                    label,
                    format!("{what} is in address space {other:?}, which launchers do not bind"),
                ));
            }
        };
        found.push((at.binding, binding));
    }
    found.sort_by_key(|(at, _)| *at);
    if let Some((i, (at, _))) = found.iter().enumerate().find(|(i, (at, _))| *at != *i as u32) {
        return Err(Error::invalid(
            label,
            format!("binding {at} where binding {i} was expected: number bindings 0, 1, ... without gaps"),
        ));
    }
    Ok(found.into_iter().map(|(_, b)| b).collect())
}
