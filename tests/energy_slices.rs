//! Sliced energies (an expert on a subset of the coordinates, in any order): the hand-built
//! block-diagonal equivalent, networks sliced on the CPU batched path and refused on the GPU
//! where they cannot run, MALA on a sliced product against exact moments, and validation.

mod common;

use ebm_gpu::energy::spec::resolve_energy;
use ebm_gpu::energy::{Energy, gpu::energy_grad_batch};
use ebm_gpu::rng;

/// The hand-built equivalent of a sum of 2-d Gaussians on slices [2, 0] and [3, 1]: the 4-d
/// Gaussian whose precision is block-diagonal after the permutation, mean likewise; energies
/// and gradients agree on the CPU (f64 and f32), in the CPU batched path and on the GPU.
#[test]
fn sliced_gaussians_equal_the_block_diagonal_gaussian() {
    let (p1, p2) = ([[2.0, 0.6], [0.6, 1.0]], [[1.5, -0.4], [-0.4, 0.8]]);
    let (m1, m2) = ([0.5, -1.0], [1.0, 2.0]);
    let (s1, s2) = ([2usize, 0], [3usize, 1]);
    let sliced = resolve_energy(&format!(
        r#"{{"type": "sum", "slices": [{s1:?}, {s2:?}], "terms": [{{"type": "gaussian", "mean": {m1:?}, "precision": {p1:?}}},
            {{"type": "gaussian", "mean": {m2:?}, "precision": {p2:?}}}]}}"#
    ))
    .unwrap();
    let (mut p, mut m) = ([[0.0f64; 4]; 4], [0.0f64; 4]);
    for (s, (pb, mb)) in [(s1, (p1, m1)), (s2, (p2, m2))] {
        for a in 0..2 {
            m[s[a]] = mb[a];
            for b in 0..2 {
                p[s[a]][s[b]] = pb[a][b];
            }
        }
    }
    let full = resolve_energy(&format!(r#"{{"type": "gaussian", "mean": {m:?}, "precision": {p:?}}}"#)).unwrap();
    assert_eq!(sliced.dim(), 4);
    let xs = common::points(31, 200, 4);
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * (1.0 + b.abs());
    let (mut gs, mut es) = (vec![0.0f32; xs.len()], vec![0.0f32; 200]);
    sliced.energy_grad_batch(&xs, &mut gs, &mut es);
    let gpu = common::gpu().map(|ctx| energy_grad_batch(&ctx, &sliced, &xs).unwrap());
    for (n, x) in xs.chunks(4).enumerate() {
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (mut g, mut g_full) = ([0.0f64; 4], [0.0f64; 4]);
        let (e, e_full) = (sliced.energy_grad(&x64, &mut g), full.energy_grad(&x64, &mut g_full));
        assert!(close(e, e_full, 1e-12), "point {n}: sliced {e} vs block-diagonal {e_full}");
        let mut g32 = [0.0f32; 4];
        let e32 = sliced.energy_grad(x, &mut g32);
        let mut got = vec![("f32", e32, g32.to_vec()), ("batched", es[n], gs[n * 4..][..4].to_vec())];
        if let Some((e_gpu, g_gpu)) = &gpu {
            got.push(("gpu", e_gpu[n], g_gpu[n * 4..][..4].to_vec()));
        }
        for (what, e, g) in got {
            assert!(close(e as f64, e_full, 1e-5), "{what} point {n}: {e} vs {e_full}");
            for i in 0..4 {
                assert!(close(g[i] as f64, g_full[i], 1e-5), "{what} point {n} dim {i}: {} vs {}", g[i], g_full[i]);
            }
        }
        for i in 0..4 {
            assert!(
                close(g[i], g_full[i], 1e-12),
                "point {n} dim {i}: sliced {} vs block-diagonal {}",
                g[i],
                g_full[i]
            );
        }
    }
}

/// A network file as a sliced expert (the CPU batched path against per point), and a layered
/// network sliced: evaluated on the CPU, refused by the GPU with the executor to use.
#[test]
fn sliced_networks_run_on_the_cpu() {
    for (what, energy) in [
        ("sliced mlp", common::sliced_mlp()),
        (
            "sliced layered net",
            {
                // The 3x9x9 JEM fixture on dimensions 249, 0, .., 241 of a 250-d point.
                let slice: Vec<usize> = std::iter::once(249).chain(0..242).collect();
                let spec = format!(r#"{{"type": "sum", "dim": 250, "slices": [{slice:?}], "terms": ["net:tests/fixtures/nn/jem_pool.safetensors"]}}"#);
                resolve_energy(&spec)
            }
            .unwrap(),
        ),
    ] {
        let d = energy.dim();
        let xs = common::points(37, 24, d);
        let (mut gs, mut es) = (vec![0.0f32; xs.len()], vec![0.0f32; 24]);
        energy.energy_grad_batch(&xs, &mut gs, &mut es);
        for (n, x) in xs.chunks(d).enumerate() {
            let mut g = vec![0.0f32; d];
            let e = energy.energy_grad(x, &mut g);
            assert!((e - es[n]).abs() <= 1e-4 * (1.0 + e.abs()), "{what} point {n}: {e} vs batched {}", es[n]);
            for i in 0..d {
                assert!((g[i] - gs[n * d + i]).abs() <= 1e-4 * (1.0 + g[i].abs()), "{what} point {n} dim {i}: {} vs {}", g[i], gs[n * d + i]);
            }
            // Dimensions outside every slice get no gradient.
            if what == "sliced layered net" {
                assert!((242..249).all(|i| g[i] == 0.0) && g[249] != 0.0, "{what}: gradient outside the slice");
            }
        }
        if let Some(ctx) = common::gpu().filter(|_| what == "sliced layered net") {
            let message = energy_grad_batch(&ctx, &energy, &xs).unwrap_err().to_string();
            assert!(message.contains("CPU executor"), "{message}");
        }
    }
}

/// MALA (on the CPU executor, and on the GPU when there is one) on the product of a 2-d
/// correlated Gaussian expert on dimensions [2, 0] and a 1-d Gaussian on [1] of a 3-d point:
/// the sample means, variances and the covariance of x2 and x0 match the exact ones within
/// Monte Carlo error (independent chains, one draw each).
#[test]
fn mala_on_a_sliced_product_matches_the_exact_moments() {
    use ebm_gpu::sampler::cpu::CpuSampler;
    use ebm_gpu::sampler::gpu::GpuSampler;
    use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};
    // (x2, x0) ~ N((1, -0.5), inverse of [[2, 0.8], [0.8, 1]]); x1 ~ N(2, 0.5^2).
    let spec = r#"{"type": "sum", "slices": [[2, 0], [1]], "terms": [
        {"type": "gaussian", "mean": [1, -0.5], "precision": [[2, 0.8], [0.8, 1]]},
        {"type": "gaussian", "mean": [2], "std": [0.5]}]}"#;
    let energy = resolve_energy(spec).unwrap();
    let det = 2.0 * 1.0 - 0.8 * 0.8;
    let (v2, v0, c20) = (1.0 / det, 2.0 / det, -0.8 / det);
    let mean = [-0.5, 2.0, 1.0];
    let var = [v0, 0.25, v2];
    let chains = 4000;
    let init = rng::initial_states(5, 0, chains, 3, 1.0);
    let config = SamplerConfig::new(SamplerKind::Mala, 0.5, 23);
    let mut samplers: Vec<(&str, Box<dyn ChainSampler>)> =
        vec![("cpu", Box::new(CpuSampler::new(&energy, config.clone(), &init).unwrap()))];
    if let Some(ctx) = common::gpu() {
        samplers.push(("gpu", Box::new(GpuSampler::new(ctx, &energy, config, &init).unwrap())));
    }
    for (executor, mut s) in samplers {
        s.run(300).unwrap();
        let x: Vec<[f64; 3]> = s.state().unwrap().chunks(3).map(|c| [c[0] as f64, c[1] as f64, c[2] as f64]).collect();
        let n = chains as f64;
        for i in 0..3 {
            let m = x.iter().map(|p| p[i]).sum::<f64>() / n;
            let v = x.iter().map(|p| (p[i] - m).powi(2)).sum::<f64>() / n;
            assert!((m - mean[i]).abs() < 4.0 * (var[i] / n).sqrt(), "{executor} dim {i}: mean {m} vs {}", mean[i]);
            assert!(
                (v - var[i]).abs() < 4.0 * var[i] * (2.0 / n).sqrt(),
                "{executor} dim {i}: variance {v} vs {}",
                var[i]
            );
        }
        let (m0, m2) = (x.iter().map(|p| p[0]).sum::<f64>() / n, x.iter().map(|p| p[2]).sum::<f64>() / n);
        let c = x.iter().map(|p| (p[0] - m0) * (p[2] - m2)).sum::<f64>() / n;
        // The sample covariance's standard error: sqrt((v0 v2 + c20^2) / n).
        let se = ((v0 * v2 + c20 * c20) / n).sqrt();
        assert!((c - c20).abs() < 4.0 * se, "{executor}: cov(x2, x0) {c} vs {c20} (se {se})");
    }
}

/// A hand-built slice is checked like a spec's.
#[test]
fn hand_built_slices_are_validated() {
    let gauss = || Box::new(resolve_energy("correlated2").unwrap());
    for (indices, dim, needle) in [
        (vec![0, 3], 3, "out of range"),
        (vec![1, 1], 3, "twice"),
        (vec![], 3, "empty"),
        (vec![0, 1, 2], 3, "3 indices"),
    ] {
        let e = Energy::Slice { indices, dim, inner: gauss() };
        let message = e.validate().unwrap_err().to_string();
        assert!(message.contains("slice") && message.contains(needle), "{message}");
    }
}
