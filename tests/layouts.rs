//! Every Rust struct that mirrors a WGSL struct (the kernels' uniform parameters) against naga's
//! layout of the assembled kernel, member by member: names in order, byte offsets, size. The
//! mirrors come from `mirror!` beside each struct (src/gpu/layout.rs), which reads the offsets
//! with `offset_of!`, so swapping two fields of the same size in Rust fails here.

use ebm_gpu::energy::EnergyInternals;
use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::gpu::layout::Mirror;
use ebm_gpu::gpu::shader;
use ebm_gpu::nn::{Activation, Network, NetworkInternals};

fn all_mirrors() -> Vec<Mirror> {
    [
        ebm_gpu::sampler::gpu::mirrors(),
        ebm_gpu::sampler::layered::mirrors(),
        ebm_gpu::nn::gpu::mirrors(),
        ebm_gpu::nn::gpu_net::mirrors(),
        ebm_gpu::train::gpu::mirrors(),
        ebm_gpu::train::layered::mirrors(),
        ebm_gpu::train::side_gpu::mirrors(),
        ebm_gpu::rbm::mirrors(),
        ebm_gpu::rbm::deep::gpu::mirrors(),
        ebm_gpu::rbm::ais::mirrors(),
        ebm_gpu::rbm::logz::mirrors(),
        ebm_gpu::restore::mirrors(),
        ebm_gpu::energy::image::mirrors(),
        ebm_gpu::discrete::gpu::mirrors(),
        ebm_gpu::discrete::cluster::gpu::mirrors(),
    ]
    .concat()
}

/// The assembled source of `kernel`, with real generated modules where it imports them.
fn source(kernel: &str) -> String {
    match kernel {
        "train/train.wgsl" => {
            let net = Network::random_mlp(&[2, 8, 1], Activation::Silu, false, 1).unwrap();
            ebm_gpu::train::gpu::shader_source(&net.as_mlp().unwrap(), 16).unwrap()
        }
        _ => shader::assemble(kernel, &[("energy", &resolve_energy("ring8").unwrap().wgsl_module())]).unwrap(),
    }
}

/// Padding members (`_pad`, `_pad0`, ...) are not compared by name; the size covers them.
fn is_padding(name: &str) -> bool {
    name.starts_with("_pad")
}

/// Differences between a mirror and naga's layout of its WGSL struct.
fn mismatches(m: &Mirror) -> Vec<String> {
    let wgsl = source(m.kernel);
    let module = shader::validate(m.kernel, &wgsl).unwrap();
    let Some((_, ty)) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(m.wgsl)) else {
        return vec![format!("{}: no struct {} in {}", m.rust, m.wgsl, m.kernel)];
    };
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return vec![format!("{} is not a struct", m.wgsl)];
    };
    let mut out = Vec::new();
    if *span as usize != m.size {
        out.push(format!("{}: size {} in Rust, {span} in {} ({})", m.rust, m.size, m.kernel, m.wgsl));
    }
    let wgsl_fields: Vec<(&str, usize)> = members
        .iter()
        .map(|mem| (mem.name.as_deref().unwrap_or("?"), mem.offset as usize))
        .filter(|(n, _)| !is_padding(n))
        .collect();
    if wgsl_fields.len() != m.fields.len() {
        out.push(format!(
            "{}: {} fields in Rust, {} in {}.{}",
            m.rust,
            m.fields.len(),
            wgsl_fields.len(),
            m.kernel,
            m.wgsl
        ));
    }
    for (i, (&(rust_name, rust_off), &(wgsl_name, wgsl_off))) in m.fields.iter().zip(&wgsl_fields).enumerate() {
        if rust_name != wgsl_name || rust_off != wgsl_off {
            out.push(format!(
                "{} field {i}: {rust_name} at {rust_off} in Rust, {wgsl_name} at {wgsl_off} in {}.{}",
                m.rust, m.kernel, m.wgsl
            ));
        }
    }
    out
}

#[test]
fn every_mirrored_struct_matches_naga_member_by_member() {
    let problems: Vec<String> = all_mirrors().iter().flat_map(mismatches).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A mirror with two same-size fields swapped (as `offset_of!` would report them after a swap in
/// the Rust struct) is caught, naming both.
#[test]
fn swapped_fields_are_caught() {
    let mut m = ebm_gpu::sampler::gpu::mirrors().remove(0);
    let (a, b) = (m.fields[6].1, m.fields[7].1); // grad_clamp and box_lo: both f32
    (m.fields[6].1, m.fields[7].1) = (b, a);
    let problems = mismatches(&m);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("grad_clamp at 32 in Rust, grad_clamp at 28"), "{problems:?}");
}

/// Every `#[repr(C)]` struct in src/ is mirrored (StepSettings through the two trainers' structs,
/// which nest it and whose WGSL declares its fields flat).
#[test]
fn every_repr_c_struct_has_a_mirror() {
    let mut covered: Vec<&str> = all_mirrors().iter().map(|m| m.rust).collect();
    covered.push("StepSettings");
    let mut missing = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.trim() != "#[repr(C)]" {
                    continue;
                }
                let decl = lines[i + 1..].iter().find(|l| l.contains("struct ")).unwrap();
                let name = decl.split("struct ").nth(1).unwrap().split([' ', '{', '<']).next().unwrap();
                if !covered.contains(&name) {
                    missing.push(format!("{} ({})", name, path.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "#[repr(C)] structs without a mirror!: {missing:?}");
}
