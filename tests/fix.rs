//! Conditional sampling: a per-dimension scale of 0 holds a dimension fixed in every sampler on
//! both executors (the fused, tiled and layer-kernel GPU paths included), and the free
//! dimensions then sample the exact Gaussian conditional; `ebm sample --fix` end to end.

mod common;

use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::nn::{Architecture, Network};
use ebm_gpu::rng;
use ebm_gpu::sampler::cpu::CpuSampler;
use ebm_gpu::sampler::{ChainSampler, MlpStrategy, SamplerConfig, SamplerKind};

/// Precision [[2, 0.8], [0.8, 1]], mean (0.5, -0.3): x1 | x0 = 1 ~ N(-0.3 - 0.8 (1 - 0.5), 1).
const GAUSS: &str = r#"{"type": "gaussian", "mean": [0.5, -0.3], "precision": [[2, 0.8], [0.8, 1]]}"#;

fn samplers(
    ctx: Option<std::sync::Arc<ebm_gpu::gpu::GpuContext>>,
    energy: &ebm_gpu::energy::Energy,
    config: SamplerConfig,
    init: &[f32],
) -> Vec<(&'static str, Box<dyn ChainSampler>)> {
    let mut out: Vec<(&'static str, Box<dyn ChainSampler>)> =
        vec![("cpu", Box::new(CpuSampler::new(energy, config.clone(), init).unwrap()))];
    if let Some(ctx) = ctx {
        out.push(("gpu", ebm_gpu::sampler::layered::gpu_sampler(ctx, energy, config, init).unwrap()));
    }
    out
}

#[test]
fn fixed_dimensions_sample_the_gaussian_conditional() {
    let energy = resolve_energy(GAUSS).unwrap();
    let chains = 4000;
    let init: Vec<f32> = (0..chains).flat_map(|c| [1.0, (c % 7) as f32 - 3.0]).collect();
    for (kind, step, want_var) in [
        (SamplerKind::Ula, 0.05f32, 1.0 / (1.0 - 0.05 / 2.0)), // ULA's O(h) variance bias on precision 1
        (SamplerKind::Mala, 0.5, 1.0),
        (SamplerKind::Hmc, 0.3, 1.0),
        (SamplerKind::Rwmh, 1.5, 1.0),
    ] {
        let config = SamplerConfig::new(kind, step, 17);
        for (executor, mut s) in samplers(common::gpu(), &energy, config, &init) {
            s.set_dim_scale(&[0.0, 1.0]).unwrap();
            s.run(400).unwrap();
            let x = s.state().unwrap();
            assert!(x.iter().step_by(2).all(|&v| v == 1.0), "{kind:?} {executor}: the fixed dimension moved");
            let free: Vec<f64> = x.iter().skip(1).step_by(2).map(|&v| v as f64).collect();
            let n = free.len() as f64;
            let mean = free.iter().sum::<f64>() / n;
            let var = free.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let (se_m, se_v) = ((want_var / n).sqrt(), want_var * (2.0 / n).sqrt());
            assert!((mean + 0.7).abs() < 4.0 * se_m, "{kind:?} {executor}: conditional mean {mean} vs -0.7");
            assert!(
                (var - want_var).abs() < 4.0 * se_v + 0.01,
                "{kind:?} {executor}: conditional variance {var} vs {want_var}"
            );
        }
    }
}

/// The tiled MLP kernels and the layer-kernel sampler hold fixed dimensions too, and agree
/// with the CPU; a scale with every dimension fixed is refused.
#[test]
fn fixed_dimensions_hold_in_network_kernels() {
    let Some(ctx) = common::gpu() else { return };
    let dir = common::temp_dir("fix-nets");
    let nets = [("4/128/silu/128/silu/1", true), ("1x4x4/3k3s1p1/swish/flatten/1", false)];
    for (spec, tiled) in nets {
        let net = Network::random(&Architecture::parse(spec).unwrap(), 3).unwrap();
        let path = dir.join("net.safetensors");
        net.save(&path).unwrap();
        let energy = resolve_energy(&format!("net:{}", path.display())).unwrap();
        let d = energy.dim();
        let init = rng::initial_states(5, 0, 64, d, 1.0);
        let scale: Vec<f32> = (0..d).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect();
        for kind in [SamplerKind::Ula, SamplerKind::Mala] {
            let mut config = SamplerConfig::new(kind, 0.05, 8);
            if tiled {
                config.tuning.mlp_strategy = MlpStrategy::Tiled;
            }
            let mut runs = Vec::new();
            for (executor, mut s) in samplers(Some(ctx.clone()), &energy, config, &init) {
                s.set_dim_scale(&scale).unwrap();
                s.run(30).unwrap();
                let x = s.state().unwrap();
                for (row, start) in x.chunks(d).zip(init.chunks(d)) {
                    for i in (0..d).step_by(3) {
                        assert_eq!(row[i], start[i], "{spec} {kind:?} {executor}: dimension {i} moved");
                    }
                }
                assert!(x != init, "{spec} {kind:?} {executor}: the free dimensions moved");
                runs.push(x);
            }
            let differ =
                runs[0].chunks(d).zip(runs[1].chunks(d)).filter(|(a, b)| common::max_abs_diff(a, b) > 2e-3).count();
            assert!(differ <= 2, "{spec} {kind:?}: {differ} of 64 chains differ between executors");
        }
        let mut s = CpuSampler::new(&energy, SamplerConfig::new(SamplerKind::Mala, 0.05, 8), &init).unwrap();
        assert!(s.set_dim_scale(&vec![0.0; d]).is_err());
    }
}

#[test]
fn sample_fix_flag_conditions_and_refuses_bad_input() {
    let dir = common::temp_dir("fix-cli");
    let out = dir.join("x.npy");
    let o = common::ebm(&[
        "sample",
        "--energy",
        GAUSS,
        "--fix",
        "0=1",
        "--chains",
        "3000",
        "--steps",
        "300",
        "--step-size",
        "0.5",
        "--backend",
        "cpu",
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (x, _) = ebm_gpu::io::npy::read_f32(&out).unwrap();
    assert!(x.iter().step_by(2).all(|&v| v == 1.0));
    let mean = x.iter().skip(1).step_by(2).map(|&v| v as f64).sum::<f64>() / 3000.0;
    assert!((mean + 0.7).abs() < 0.08, "conditional mean {mean}");
    // A mask file: a number fixes a dimension, NaN leaves it free.
    let mask = dir.join("fix.npy");
    ebm_gpu::io::npy::write_f32(&mask, &[f32::NAN, 2.0], &[1, 2]).unwrap();
    let o = common::ebm(&[
        "sample",
        "--energy",
        GAUSS,
        "--fix",
        common::s(&mask),
        "--chains",
        "16",
        "--steps",
        "10",
        "--backend",
        "cpu",
        "--out",
        common::s(&out),
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (x, _) = ebm_gpu::io::npy::read_f32(&out).unwrap();
    assert!(x.iter().skip(1).step_by(2).all(|&v| v == 2.0));
    for (fix, says) in [
        ("5=1", "outside"),
        ("0=1,1=2", "every dimension"),
        ("0=nan", "finite"),
        ("x", "neither"),
        ("0=1,0=2", "fixed twice"),
    ] {
        let o = common::ebm(&[
            "sample",
            "--energy",
            GAUSS,
            "--fix",
            fix,
            "--chains",
            "4",
            "--steps",
            "2",
            "--backend",
            "cpu",
        ]);
        assert!(!o.status.success() && common::stderr(&o).contains(says), "--fix {fix}: {}", common::stderr(&o));
    }
    let o = common::ebm(&[
        "sample",
        "--energy",
        GAUSS,
        "--fix",
        "0=1",
        "--warmup",
        "50",
        "--chains",
        "4",
        "--steps",
        "2",
        "--backend",
        "cpu",
    ]);
    assert!(!o.status.success() && common::stderr(&o).contains("--no-adapt-mass"), "{}", common::stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
