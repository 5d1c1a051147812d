//! Every kernel, assembled with representative energies, parses and validates with naga.
//! Needs no GPU.

use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::energy::{Energy, EnergyInternals};
use ebm_gpu::gpu::Binding;
use ebm_gpu::gpu::shader::{KERNELS, SOURCES, assemble, bindings_of, validate};
use ebm_gpu::nn::{Activation, Network, NetworkInternals};

#[test]
fn every_kernel_validates_with_every_energy_kind() {
    let energies = [
        "ring8",
        "double_well",
        "banana",
        "correlated2",
        r#"{"type": "gaussian", "mean": [0, 1, 2], "std": [1, 2, 3]}"#,
        r#"{"type": "sum", "terms": [{"type": "double_well"}, {"type": "banana"}], "weights": [0.5, 2]}"#,
        r#"{"type": "sum", "terms": [{"type": "box", "lo": -1, "hi": 1, "weight": 5}, {"type": "box", "lo": -1, "hi": 1, "weight": 5, "penalty": "softplus", "sharpness": 3},
            {"type": "linear_inequality", "a": [1, 2], "b": 0, "weight": 1}, {"type": "linear_equality", "a": [1, 2], "b": 0, "weight": 1},
            {"type": "norm_ball", "radius": 1, "weight": 1}, {"type": "simplex", "weight": 1}]}"#,
    ];
    // The tiled MLP kernels also import the generated network module.
    let net = Network::random_mlp(&[5, 70, 33, 1], Activation::Silu, false, 1).unwrap();
    let tiled = net.as_mlp().unwrap().wgsl_tiled_module().source;
    let mlp = Energy::from_network(net);
    let mut modules: Vec<(String, String)> =
        energies.iter().map(|s| (s.to_string(), resolve_energy(s).unwrap().wgsl_module())).collect();
    modules.push(("mlp".into(), mlp.wgsl_module()));
    for (spec, module) in &modules {
        // The training kernels are assembled per network below.
        for kernel in KERNELS.iter().filter(|k| !k.starts_with("train")) {
            let wgsl = assemble(kernel, &[("energy", module), ("mlp_net", &tiled)]).unwrap();
            let module = validate(kernel, &wgsl).unwrap_or_else(|e| panic!("{kernel} with energy {spec}:\n{e}"));
            // The launchers bind what the module declares: it must be a layout they can make.
            bindings_of(kernel, &module).unwrap_or_else(|e| panic!("{kernel} with energy {spec}: {e}"));
        }
    }
}

/// The bind group layout is read from the module: uniforms (dynamic offsets), read-only and
/// read-write storage in binding order; gaps and other groups are refused with the binding named.
#[test]
fn bind_group_layouts_come_from_the_module() {
    let module =
        |decls: &str| validate("t.wgsl", &format!("{decls}\n@compute @workgroup_size(1) fn main() {{}}")).unwrap();
    let ok = module(
        "struct P { n: u32 }\n@group(0) @binding(2) var<storage, read> a: array<f32>;\n\
         @group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(1) var<storage, read_write> b: array<f32>;\n\
         var<workgroup> tile: array<f32, 4>;",
    );
    assert_eq!(
        bindings_of("t", &ok).unwrap(),
        vec![Binding::UniformDynamic, Binding::StorageReadWrite, Binding::StorageRead]
    );
    let gap = module(
        "@group(0) @binding(0) var<storage, read> a: array<f32>;\n@group(0) @binding(2) var<storage, read> b: array<f32>;",
    );
    let err = bindings_of("t", &gap).unwrap_err().to_string();
    assert!(err.contains("binding 2 where binding 1 was expected"), "{err}");
    let group1 = module("@group(1) @binding(0) var<storage, read> a: array<f32>;");
    let err = bindings_of("t", &group1).unwrap_err().to_string();
    assert!(err.contains("group 1"), "{err}");
}

#[test]
fn training_kernels_validate_for_several_networks() {
    for (dims, act, negate, batch) in [
        (&[2, 16, 1][..], Activation::Silu, false, 64),
        (&[2, 1][..], Activation::Relu, false, 8),
        (&[5, 33, 17, 9, 1][..], Activation::Tanh, true, 300),
    ] {
        let net = Network::random_mlp(dims, act, negate, 3).unwrap();
        let net = net.as_mlp().unwrap();
        let wgsl = ebm_gpu::train::gpu::shader_source(&net, batch).unwrap();
        if let Err(e) = validate("train/train.wgsl", &wgsl) {
            panic!("train.wgsl for {dims:?}:\n{e}");
        }
        if dims.len() > 2 {
            let wgsl = ebm_gpu::train::gpu::tiled_shader_source(&net, batch).unwrap();
            if let Err(e) = validate("train/train_tiled.wgsl", &wgsl) {
                panic!("train_tiled.wgsl for {dims:?}:\n{e}");
            }
        }
    }
}

#[test]
fn every_shader_file_is_registered_and_imports_resolve() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk = Vec::new();
    for entry in walk(&dir) {
        on_disk.push(entry.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/"));
    }
    on_disk.sort();
    let mut registered: Vec<String> = SOURCES.iter().map(|(n, _)| n.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered, "shaders/ and gpu::shader::SOURCES disagree");
}

#[test]
fn a_broken_shader_reports_the_module_name_and_naga_diagnostic() {
    let err = validate("broken.wgsl", "fn f() -> f32 { return 1u; }").unwrap_err().to_string();
    assert!(err.contains("broken.wgsl"), "{err}");
    assert!(err.contains("return"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
    out
}
