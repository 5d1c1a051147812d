//! Residual blocks in the one network type (src/nn/residual.rs) on the CPU: the text form, the
//! energy against a composition of plain networks, the batched executor against the f64
//! definition, gradients against f64 central differences, PyTorch-style parameter names in
//! safetensors files, and bad input.

mod common;

use common::{net, randn};

use ebm_gpu::energy::Energy;
use ebm_gpu::nn::cpu::Tape;
use ebm_gpu::nn::{Architecture, Network, NetworkInternals, Shape};
use ebm_gpu::rng;

/// Identity, 1x1-conv and pooled skips, nested blocks, a block first and a block last.
const SPECS: &[&str] = &[
    "3x8x8/4k3p1/silu/res(4k3p1,silu,4k3p1)/silu/res(6k3s2p1,tanh,6k3p1;proj:6k1s2)/res(6k3s2p1,swish;proj:avgpool:2)/flatten/5/softplus/1",
    "2x6x6/res(2k3p1,silu,2k3p1)/res(res(2k3p1,tanh),3k1;proj:3k1:nobias)/flatten/3/head:class:1",
    "4/res(7,tanh,4)/head:lse",
    "5/res(9,elu:0.5,5)/silu/res(res(6,tanh,5),softplus)/1/head:-f",
];

#[test]
fn text_form_round_trips_and_gives_shapes() {
    for spec in SPECS {
        let arch = Architecture::parse(spec).unwrap();
        let text = arch.to_string();
        assert_eq!(Architecture::parse(&text).unwrap(), arch, "{spec} -> {text}");
    }
    let arch = Architecture::parse(SPECS[0]).unwrap();
    assert_eq!(
        arch.to_string(),
        "3x8x8/4k3s1p1/silu/res(4k3s1p1,silu,4k3s1p1)/silu/res(6k3s2p1,tanh,6k3s1p1;proj:6k1s2p0)/\
         res(6k3s2p1,silu;proj:avgpool:2)/flatten/5/softplus/1/head:f"
    );
    let shapes = arch.shapes().unwrap();
    // res(6k3s2p1,...;proj:...) ends in 6x4x4; its projection start passes the skip 4x8x8 on.
    let proj = arch.layers.iter().position(|k| *k == ebm_gpu::nn::LayerKind::ResProj).unwrap();
    assert_eq!((shapes[proj].to_string(), shapes[proj + 1].to_string()), ("6x4x4".into(), "4x8x8".into()));
    assert_eq!(shapes[proj + 2], Shape::Image { c: 6, h: 4, w: 4 });
    assert_eq!(*shapes.last().unwrap(), Shape::Flat(1));
    // Training takes residual networks in the text form (run.json keeps it).
    let model = ebm_gpu::train::ModelSpec::parse(SPECS[1]).unwrap();
    assert_eq!(model.build(3).unwrap(), net(SPECS[1], 3));
    let text = serde_json::to_string(&model).unwrap();
    assert_eq!(serde_json::from_str::<ebm_gpu::train::ModelSpec>(&text).unwrap(), model);
}

#[test]
fn parameters_are_named_as_a_pytorch_residual_module() {
    let names: Vec<String> = net(SPECS[0], 1).safetensors_parts().0.into_iter().map(|t| t.0).collect();
    let want = [
        "0.weight",
        "0.bias",
        "2.body.0.weight",
        "2.body.0.bias",
        "2.body.2.weight",
        "2.body.2.bias",
        "4.body.0.weight",
        "4.body.0.bias",
        "4.body.2.weight",
        "4.body.2.bias",
        "4.proj.weight",
        "4.proj.bias",
        "5.body.0.weight",
        "5.body.0.bias",
        "7.weight",
        "7.bias",
        "9.weight",
        "9.bias",
    ];
    assert_eq!(names, want);
    let names: Vec<String> = net(SPECS[1], 1).safetensors_parts().0.into_iter().map(|t| t.0).collect();
    let want = [
        "0.body.0.weight",
        "0.body.0.bias",
        "0.body.2.weight",
        "0.body.2.bias",
        "1.body.0.body.0.weight",
        "1.body.0.body.0.bias",
        "1.body.1.weight",
        "1.body.1.bias",
        "1.proj.weight",
        "3.weight",
        "3.bias",
    ];
    assert_eq!(names, want);
}

/// f of `net` at the points xs (the CPU executor).
fn outputs(net: &Network, xs: &[f32]) -> Vec<f32> {
    let mut tape = Tape::default();
    net.forward_batch(xs, xs.len() / net.input_dim(), &mut tape);
    tape.outputs().to_vec()
}

/// A plain network from `spec` whose parameter layers take, in order, the parameters of
/// `from`'s layers `take`.
fn part(spec: &str, from: &Network, take: &[usize]) -> Network {
    let arch = Architecture::parse(spec).unwrap();
    let shapes = arch.shapes().unwrap();
    let mut take = take.iter();
    let params = arch
        .layers
        .iter()
        .zip(&shapes)
        .map(|(kind, input)| match kind.param_shapes(*input) {
            Some(_) => {
                let l = &from.layers()[*take.next().unwrap()];
                (l.weight.clone(), l.bias.clone())
            }
            None => (Vec::new(), Vec::new()),
        })
        .collect();
    assert!(take.next().is_none(), "{spec}: parameters left over");
    Network::new(&arch, params).unwrap()
}

/// y = P(x) + F(x) by composing plain networks with the residual net's parameters: the
/// definition, independent of the markers' executor.
#[test]
fn blocks_compute_the_skip_plus_the_body() {
    let n = 4;
    let add = |a: Vec<f32>, b: Vec<f32>| a.iter().zip(&b).map(|(a, b)| a + b).collect::<Vec<f32>>();
    // [ResBegin, conv, silu, conv, ResProj, conv 1x1 stride 2, ResEnd, flatten, linear]
    let r = net("2x5x5/res(3k3s2p1,silu,3k3p1;proj:3k1s2)/flatten/1", 3);
    let xs = randn(1, n * 50);
    let body = part("2x5x5/3k3s2p1/silu/3k3p1/flatten", &r, &[1, 3]);
    let proj = part("2x5x5/3k1s2/flatten", &r, &[5]);
    let top = part("27/1", &r, &[8]);
    let want = outputs(&top, &add(outputs(&body, &xs), outputs(&proj, &xs)));
    assert!(common::max_abs_diff(&outputs(&r, &xs), &want) < 1e-5, "projected block");
    // Nested identity blocks: x + tanh(x + L(x)).
    let r = net("3/res(res(3),tanh)/2", 4);
    let xs = randn(2, n * 3);
    let inner = part("3/3", &r, &[2]);
    let inside = add(xs.clone(), outputs(&inner, &xs));
    let act = part("3/tanh", &r, &[]);
    let top = part("3/2", &r, &[6]);
    let want = outputs(&top, &add(xs.clone(), outputs(&act, &inside)));
    assert!(common::max_abs_diff(&outputs(&r, &xs), &want) < 1e-5, "nested blocks");
    // Pooled skip: avgpool:2 of x plus the strided body.
    let r = net("2x4x4/res(2k3s2p1;proj:avgpool:2)/flatten/1", 5);
    let xs = randn(3, n * 32);
    let body = part("2x4x4/2k3s2p1/flatten", &r, &[1]);
    let pool = part("2x4x4/avgpool:2/flatten", &r, &[]);
    let top = part("8/1", &r, &[6]);
    let want = outputs(&top, &add(outputs(&body, &xs), outputs(&pool, &xs)));
    assert!(common::max_abs_diff(&outputs(&r, &xs), &want) < 1e-5, "pooled skip");
}

/// The batched CPU executor (energies, dE/dx, dE/dθ summed over points) against the f64
/// per-point definition.
#[test]
fn batched_executor_matches_the_f64_definition() {
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 11 + s as u64);
        let (n, d) = (6, net.input_dim());
        let xs = randn(100 + s as u64, n * d);
        let mut tape = Tape::default();
        net.forward_batch(&xs, n, &mut tape);
        let (mut es, mut d_out) = (vec![0.0f32; n], Vec::new());
        net.head_batch(&tape, &mut es, &mut d_out);
        let mut dp = vec![0.0f32; net.param_count()];
        net.backward_batch(&mut tape, &d_out, Some(&mut dp), true);
        let dx = tape.input_grad().to_vec();
        let mut want_dp = vec![0.0f64; net.param_count()];
        for p in 0..n {
            let x64: Vec<f64> = xs[p * d..(p + 1) * d].iter().map(|&v| v as f64).collect();
            let mut g = vec![0.0f64; d];
            let e = net.energy_grad_ref(&x64, &mut g);
            assert!((es[p] as f64 - e).abs() < 1e-4 * (1.0 + e.abs()), "{spec} point {p}: E {} vs {e}", es[p]);
            let scale = 1.0 + g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in 0..d {
                assert!((dx[p * d + i] as f64 - g[i]).abs() < 1e-4 * scale, "{spec} point {p}: dE/dx[{i}]");
            }
            let (_, gp) = net.energy_param_grad_ref(&x64);
            want_dp.iter_mut().zip(gp).for_each(|(a, v)| *a += v);
        }
        let scale = 1.0 + want_dp.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (j, (g, w)) in dp.iter().zip(&want_dp).enumerate() {
            assert!((*g as f64 - w).abs() < 1e-4 * scale, "{spec}: dE/dθ[{j}] {g} vs {w}");
        }
        // Parameter gradients only (no dE/dx): the same.
        net.forward_batch(&xs, n, &mut tape);
        let mut dp_only = vec![0.0f32; net.param_count()];
        net.backward_batch(&mut tape, &d_out, Some(&mut dp_only), false);
        assert!(common::max_abs_diff(&dp_only, &dp) < 1e-5, "{spec}: without dE/dx");
        // The energy's batched path (blocks of points, weighted sums).
        let energy = Energy::Net(std::sync::Arc::new(net.clone()));
        let (mut gs, mut es2) = (vec![0.0f32; n * d], vec![0.0f32; n]);
        energy.energy_grad_batch(&xs, &mut gs, &mut es2);
        assert!(common::max_abs_diff(&es2, &es) < 1e-5 && common::max_abs_diff(&gs, &dx) < 1e-5, "{spec}");
    }
}

/// dE/dx and dE/dθ of the f64 definition against central differences of its energy.
#[test]
fn gradients_match_central_differences() {
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 31 + s as u64);
        let d = net.input_dim();
        let x: Vec<f64> = randn(300 + s as u64, d).iter().map(|&v| v as f64).collect();
        let mut g = vec![0.0f64; d];
        net.energy_grad_ref(&x, &mut g);
        let h = 1e-6;
        for i in (0..d).step_by((d / 23).max(1)) {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let mut tmp = vec![0.0; d];
            let fd = (net.energy_grad_ref(&xp, &mut tmp) - net.energy_grad_ref(&xm, &mut tmp)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "{spec}: dE/dx[{i}] {} vs {fd}", g[i]);
        }
        let (_, dp) = net.energy_param_grad_ref(&x);
        let theta = net.pack_params();
        // Every parameter of every layer is visited (the projections' included).
        for j in (0..theta.len()).step_by((theta.len() / 61).max(1)) {
            let shifted = |delta: f32| {
                let mut t = theta.clone();
                t[j] += delta;
                let mut m = net.clone();
                m.set_params(&t).unwrap();
                let mut tmp = vec![0.0; d];
                (m.energy_grad_ref(&x, &mut tmp), (theta[j] + delta) as f64 - theta[j] as f64)
            };
            let ((ep, hp), (em, hm)) = (shifted(1e-3), shifted(-1e-3));
            let fd = (ep - em) / (hp - hm);
            assert!((fd - dp[j]).abs() < 2e-3 * (1.0 + fd.abs()), "{spec}: dE/dθ[{j}] {} vs {fd}", dp[j]);
        }
    }
}

#[test]
fn files_round_trip_and_take_prefixed_pytorch_names() {
    let dir = std::env::temp_dir().join(format!("ebm-nn-res-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 51 + s as u64);
        let path = dir.join(format!("r{s}.safetensors"));
        net.save(&path).unwrap();
        let back = Network::load(&path, None).unwrap();
        assert_eq!(back, net, "{spec}");
        assert_eq!(back.spec(), net.spec());
    }
    // A state_dict as `model.layers = nn.Sequential(...)` names it, architecture given.
    let net = net(SPECS[0], 7);
    let arch = net.architecture();
    let (tensors, _) = net.safetensors_parts();
    let prefixed: Vec<_> = tensors.iter().map(|(n, s, v)| (format!("layers.{n}"), s.clone(), v.clone())).collect();
    assert_eq!(Network::from_tensors(&arch, prefixed.clone()).unwrap(), net);
    // Missing, misnamed and misshapen projections are errors naming the tensor.
    let without: Vec<_> = prefixed.iter().filter(|t| t.0 != "layers.4.proj.weight").cloned().collect();
    let e = Network::from_tensors(&arch, without).unwrap_err().to_string();
    assert!(e.contains("missing tensor layers.4.proj.weight [6, 4, 1, 1]"), "{e}");
    let mut renamed = prefixed.clone();
    renamed.iter_mut().find(|t| t.0 == "layers.4.body.2.weight").unwrap().0 = "layers.4.body.02.weight".into();
    let e = Network::from_tensors(&arch, renamed).unwrap_err().to_string();
    assert!(e.contains("layers.4.body.02.weight") && e.contains("no sign or leading zeros"), "{e}");
    let mut extra = prefixed.clone();
    extra.push(("layers.5.proj.weight".into(), vec![6, 6, 1, 1], vec![0.0; 36]));
    let e = Network::from_tensors(&arch, extra).unwrap_err().to_string();
    assert!(e.contains("layers.5.proj.weight") && e.contains("no parameters"), "pool projection: {e}");
    let mut wrong = prefixed.clone();
    let t = wrong.iter_mut().find(|t| t.0 == "layers.4.proj.weight").unwrap();
    (t.1, t.2) = (vec![6, 3, 1, 1], vec![0.0; 18]);
    let e = Network::from_tensors(&arch, wrong).unwrap_err().to_string();
    assert!(e.contains("layers.4.proj.weight") && e.contains("[6, 4, 1, 1]"), "{e}");
    // Without an architecture or its metadata a residual state_dict is not taken for an MLP.
    let bare = dir.join("bare.safetensors");
    ebm_gpu::io::write_safetensors(&bare, &tensors, Default::default()).unwrap();
    assert!(Network::load(&bare, None).is_err());
    assert_eq!(Network::load(&bare, Some(&arch)).unwrap(), net);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_blocks_are_errors_naming_the_block_and_the_shapes() {
    let cases = [
        // The body changes the shape, no projection: the block's layer index, both shapes.
        ("1x8x8/res(4k3p1)/flatten/1", "residual block at layer 0", &["1x8x8", "4x8x8", "projection"][..]),
        ("1x8x8/2k3p1/res(2k3s2p1,silu)/flatten/1", "residual block at layer 1", &["2x8x8", "2x4x4"]),
        ("4/3/res(5,tanh)/1", "residual block at layer 1", &["3", "5"]),
        // The projection cannot produce the body's shape.
        ("1x8x8/res(4k3s2p1;proj:4k1)/flatten/1", "residual block at layer 0", &["4x8x8", "4x4x4", "4k1s1p0"]),
        ("2x8x8/res(2k3s2p1;proj:avgpool:4)/flatten/1", "residual block at layer 0", &["2x2x2", "2x4x4"]),
        ("1x8x8/res(1k3p1,res(3k3p1;proj:2k1));flatten/1", "follows its closing", &[]),
        // Malformed text.
        ("1x8x8/res(1k3p1/flatten/1", "not closed", &[]),
        ("1x8x8/res1k3p1)/flatten/1", "closes no", &[]),
        ("1x8x8/res()/flatten/1", "empty layer", &[]),
        ("1x8x8/res(1k3p1,,silu)/flatten/1", "empty layer", &[]),
        ("1x8x8/res(1k3p1)x/flatten/1", "follows its closing", &[]),
        ("1x8x8/res(1k3p1;proj:1k1;proj:1k1)/flatten/1", "more than one ';'", &[]),
        ("1x8x8/res(1k3p1;1k1)/flatten/1", "expected proj:", &[]),
        ("1x8x8/res(1k3p1;proj:silu)/flatten/1", "expected a Conv2d", &[]),
        ("1x8x8/res(1k3p1;proj:)/flatten/1", "unknown layer", &[]),
        ("1x8x8/res(1k3p1,bogus)/flatten/1", "unknown layer", &[]),
        ("1x8x8/silu(2)/flatten/1", "a residual block is written", &[]),
        ("4/res(4,tanh;proj:4)/1", "expected a Conv2d", &[]),
        ("4/res(4,(tanh))/1", "a residual block is written", &[]),
    ];
    for (spec, want, shapes) in cases {
        match Architecture::parse(spec) {
            Ok(a) => panic!("{spec:?} parsed as {a}"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains(want), "{spec:?}: {e} (expected {want:?})");
                for s in shapes {
                    assert!(e.contains(s), "{spec:?}: {e} (expected the shape {s})");
                }
            }
        }
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("4/{}4{}/1", "res(".repeat(40), ")".repeat(40));
    let e = Architecture::parse(&deep).unwrap_err().to_string();
    assert!(e.contains("nest more than 32 deep"), "{e}");
    // Layer lists built by hand are checked as well: unbalanced or misplaced markers.
    use ebm_gpu::nn::{Head, LayerKind as L};
    let conv = L::Conv2d { out_c: 1, kernel: 1, stride: 1, pad: 0, bias: true };
    let image = Shape::Image { c: 1, h: 2, w: 2 };
    let tail = [L::Flatten, L::Linear { outputs: 1, bias: true }];
    let bad: [(&[L], &str); 6] = [
        (&[L::ResBegin, conv], "residual block at layer 0"),
        (&[conv, L::ResEnd], "not begun"),
        (&[L::ResBegin, L::ResEnd], "body is empty"),
        (&[L::ResBegin, conv, L::ResProj, conv, conv, L::ResEnd], "projection (layer 2) must be one"),
        (&[conv, L::ResProj, conv, L::ResEnd], "outside a residual block"),
        (&[L::ResBegin, conv, L::ResProj, L::Act(ebm_gpu::nn::Activation::Tanh), L::ResEnd], "must be one Conv2d"),
    ];
    for (layers, want) in bad {
        let arch = Architecture { input: image, layers: [layers, &tail[..]].concat(), head: Head::F };
        let e = arch.shapes().unwrap_err().to_string();
        assert!(e.contains(want), "{arch:?}: {e} (expected {want:?})");
        assert!(Network::random(&arch, 1).is_err());
    }
}

fn safetensors_f32(path: &std::path::Path) -> (std::collections::HashMap<String, Vec<f32>>, String) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let spec = header.metadata().as_ref().and_then(|m| m.get("ebm.net").cloned()).unwrap_or_default();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
                safetensors::Dtype::F64 => {
                    bytemuck::pod_collect_to_vec::<u8, f64>(view.data()).into_iter().map(|v| v as f32).collect()
                }
                _ => bytemuck::pod_collect_to_vec(view.data()),
            };
            (name, values)
        })
        .collect();
    (tensors, spec)
}

/// A state_dict PyTorch wrote for the documented `Residual` module (tests/fixtures/nn/
/// make_residual_fixture.py: 1x1-conv, pooled and identity skips, a nested block, names under
/// a `layers.` prefix, no architecture metadata) loads given the architecture and gives
/// PyTorch's outputs, energies and input gradients (float64 autograd).
#[test]
fn pytorch_residual_fixture_matches() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nn");
    let (io, spec) = safetensors_f32(&dir.join("residual.io.safetensors"));
    let arch = Architecture::parse(&spec).unwrap();
    assert_eq!(arch.to_string(), spec, "the fixture's spec is in canonical form");
    let weights = dir.join("residual.safetensors");
    let e = Network::load(&weights, None).unwrap_err().to_string();
    assert!(e.contains("no ebm.net architecture") && e.contains("\"spec\""), "asks for the architecture: {e}");
    let net = Network::load(&weights, Some(&arch)).unwrap();
    let (x, f, energy, grad) = (&io["x"], &io["f"], &io["energy"], &io["grad"]);
    let (n, d) = (energy.len(), net.input_dim());
    let max_f = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(common::max_abs_diff(&outputs(&net, x), f) < 1e-4 * (1.0 + max_f), "outputs differ from PyTorch's");
    let max_g = grad.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (mut gs, mut es) = (vec![0.0f32; n * d], vec![0.0f32; n]);
    Energy::Net(std::sync::Arc::new(net.clone())).energy_grad_batch(x, &mut gs, &mut es);
    assert!(common::max_abs_diff(&es, energy) < 1e-4 * (1.0 + max_f), "energies {es:?} vs PyTorch {energy:?}");
    assert!(common::max_abs_diff(&gs, grad) < 1e-4 * max_g, "input gradients differ from PyTorch's");
    // The same on the GPU's layer kernels.
    if let Some(ctx) = common::gpu() {
        let (eg, gg) = ebm_gpu::nn::gpu_net::energy_grad_batch(&ctx, &net, x).unwrap();
        assert!(common::max_abs_diff(&eg, energy) < 1e-4 * (1.0 + max_f), "GPU energies {eg:?} vs {energy:?}");
        assert!(common::max_abs_diff(&gg, grad) < 1e-4 * max_g, "GPU input gradients differ from PyTorch's");
    }
}

/// Random texts from the tokens of the form: parsing never panics, and what parses prints back
/// to itself and runs (energy and gradient finite) on the CPU.
#[test]
fn random_texts_parse_or_are_errors() {
    let tokens = [
        "res(",
        ")",
        ",",
        ";",
        ";proj:",
        "proj:",
        "/",
        "2k3p1",
        "2k1s2",
        "3k3s2p1",
        "4",
        "silu",
        "tanh",
        "flatten",
        "avgpool:2",
        "res(2k3p1)",
        "(",
        ":nobias",
        "2",
    ];
    let uniforms = rng::initial_states(5, 0, 1, 8000 * 13, 1.0);
    let (mut parsed, mut with_blocks) = (0, 0);
    for case in uniforms.chunks_exact(13) {
        let len = 1 + (case[0].abs() * 4.0) as usize % 12;
        let body: String = case[1..=len].iter().map(|u| tokens[(u.abs() * 1e3) as usize % tokens.len()]).collect();
        let text = format!("2x4x4/{body}/flatten/1");
        let Ok(arch) = Architecture::parse(&text) else { continue };
        parsed += 1;
        with_blocks += arch.layers.contains(&ebm_gpu::nn::LayerKind::ResBegin) as usize;
        assert_eq!(Architecture::parse(&arch.to_string()).unwrap(), arch, "{text}");
        let net = Network::random(&arch, 1).unwrap();
        let x: Vec<f64> = randn(9, net.input_dim()).iter().map(|&v| v as f64).collect();
        let mut g = vec![0.0; x.len()];
        assert!(net.energy_grad_ref(&x, &mut g).is_finite() && g.iter().all(|v| v.is_finite()), "{text}");
    }
    eprintln!("{parsed} of 8000 random texts parsed, {with_blocks} with residual blocks");
    assert!(with_blocks > 40, "only {with_blocks} parsed texts hold blocks: the test exercises little");
}
