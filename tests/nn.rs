//! Networks of crate::nn layers on the CPU: every layer's batched forward/backward against its
//! f64 definition, energies' input and parameter gradients against f64 central differences,
//! the text form and safetensors files (including a PyTorch-made fixture), and bad input.

mod common;

use common::{net, randn};

use ebm_gpu::energy::{Energy, EnergyInternals};
use ebm_gpu::nn::cpu::Tape;
use ebm_gpu::nn::{Architecture, Head, Network, NetworkInternals};
use std::path::{Path, PathBuf};

/// Networks with every layer type, sizes that are not multiples of any tile, every head.
const SPECS: &[&str] = &[
    "3x13x11/7k3s2p1/silu/5k5s1p2/tanh/flatten/9/softplus/1",
    "2x9x9/6k3s1p1/relu/avgpool:2/5k2s1p0:nobias/elu:0.5/flatten/7/leaky_relu:0.1/10/head:lse",
    "1x12x12/4k5s2p4/swish/3k3s3p0/flatten/6/head:class:4",
    "5/17/silu/13/tanh/1/head:-f",
    "1x8x8/3k3/silu/flatten/1:nobias/head:-f",
    // At most four inputs: the first layer skips the GEMM, with a bias and without.
    "2/8:nobias/tanh/3/silu/1",
    "4/6/silu/1/head:-f",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nn").join(name)
}

#[test]
fn text_form_round_trips() {
    for spec in SPECS {
        let arch = Architecture::parse(spec).unwrap();
        let again = Architecture::parse(&arch.to_string()).unwrap();
        assert_eq!(arch, again, "{spec} -> {arch}");
    }
    let uva = Architecture::parse(
        "conv:1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f",
    )
    .unwrap();
    let shapes = uva.shapes().unwrap();
    assert_eq!(shapes[1].to_string(), "16x16x16");
    assert_eq!(shapes[9].to_string(), "256", "flatten gives 64x2x2");
    assert_eq!(
        Architecture::parse("4x6x6/2k3/flatten/3").unwrap().head,
        Head::LogSumExp,
        "K > 1 defaults to the JEM head"
    );
}

#[test]
fn batched_layers_match_their_f64_definitions() {
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 11 + s as u64);
        let n = 5;
        let d = net.input_dim();
        let xs = randn(100 + s as u64, n * d);
        let mut tape = Tape::default();
        net.forward_batch(&xs, n, &mut tape);
        let values: Vec<Vec<f32>> = (0..=net.layers().len()).map(|k| net.tape_points(&tape, k)).collect();
        for (k, layer) in net.layers().iter().enumerate() {
            let (inp, out) = (layer.input.len(), layer.output_shape().len());
            for p in 0..n {
                let x64: Vec<f64> = values[k][p * inp..(p + 1) * inp].iter().map(|&v| v as f64).collect();
                let want = layer.view().forward_ref(&x64);
                let got = &values[k + 1][p * out..(p + 1) * out];
                let scale = 1.0 + want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        ((*g as f64) - w).abs() < 2e-5 * scale * (inp as f64).sqrt(),
                        "{spec} layer {k} point {p} out {i}: {g} vs {w}"
                    );
                }
            }
        }
        // Backward: input and parameter gradients of a random linear function of the output.
        let k_out = net.outputs();
        let d_out = randn(200 + s as u64, n * k_out);
        let mut grads = vec![0.0f32; net.param_count()];
        net.backward_batch(&mut tape, &d_out, Some(&mut grads), true);
        let dx = tape.input_grad().to_vec();
        let mut want_dx = vec![0.0f64; n * d];
        let mut want_dp = vec![0.0f64; net.param_count()];
        for p in 0..n {
            let mut d: Vec<f64> = d_out[p * k_out..(p + 1) * k_out].iter().map(|&v| v as f64).collect();
            let mut dps = Vec::new();
            for (k, layer) in net.layers().iter().enumerate().rev() {
                let inp = layer.input.len();
                let x64: Vec<f64> = values[k][p * inp..(p + 1) * inp].iter().map(|&v| v as f64).collect();
                let (dxk, dpk) = layer.view().backward_ref(&x64, &d);
                dps.push(dpk);
                d = dxk;
            }
            want_dx[p * d.len()..(p + 1) * d.len()].copy_from_slice(&d);
            for (acc, v) in want_dp.iter_mut().zip(dps.into_iter().rev().flatten()) {
                *acc += v;
            }
        }
        let close = |got: &[f32], want: &[f64], what: &str| {
            let scale = 1.0 + want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(((*g as f64) - w).abs() < 1e-4 * scale, "{spec}: {what}[{i}] {g} vs {w}");
            }
        };
        close(&dx, &want_dx, "dx");
        close(&grads, &want_dp, "dθ");
    }
}

/// Central differences in f64 of the definition-level energy.
#[test]
fn gradients_match_central_differences() {
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 31 + s as u64);
        let d = net.input_dim();
        let x: Vec<f64> = randn(300 + s as u64, d).iter().map(|&v| v as f64).collect();
        let mut g = vec![0.0f64; d];
        let e = net.energy_grad_ref(&x, &mut g);
        assert!(e.is_finite());
        let h = 1e-6;
        for i in (0..d).step_by((d / 23).max(1)) {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let mut tmp = vec![0.0; d];
            let fd = (net.energy_grad_ref(&xp, &mut tmp) - net.energy_grad_ref(&xm, &mut tmp)) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{spec}: dE/dx[{i}] {} vs central difference {fd}",
                g[i]
            );
        }
        let (_, dp) = net.energy_param_grad_ref(&x);
        let theta = net.pack_params();
        for j in (0..theta.len()).step_by((theta.len() / 29).max(1)) {
            // Perturb in f64 by rebuilding the energy from a shifted copy: parameters are f32,
            // so use a step f32 represents exactly around the value.
            let step = 1e-3f32;
            let shifted = |delta: f32| {
                let mut t = theta.clone();
                t[j] += delta;
                let mut m = net.clone();
                m.set_params(&t).unwrap();
                let mut tmp = vec![0.0; d];
                (m.energy_grad_ref(&x, &mut tmp), (theta[j] + delta) as f64 - theta[j] as f64)
            };
            let ((ep, hp), (em, hm)) = (shifted(step), shifted(-step));
            let fd = (ep - em) / (hp - hm);
            // Second-order error of a 1e-3 step on smooth activations; relu kinks are not hit at
            // random points with this step in practice, and the tolerance covers curvature.
            assert!(
                (fd - dp[j]).abs() < 2e-3 * (1.0 + fd.abs()),
                "{spec}: dE/dθ[{j}] {} vs central difference {fd}",
                dp[j]
            );
        }
    }
}

#[test]
fn batched_energy_matches_per_point_and_sums_with_weight() {
    for (s, spec) in SPECS.iter().enumerate() {
        let net = std::sync::Arc::new(net(spec, 41 + s as u64));
        let d = net.input_dim();
        let n = 300; // more than one block for the small networks
        let xs = randn(400 + s as u64, n * d);
        let energy = Energy::Net(net.clone());
        let (mut gs, mut es) = (vec![0.0f32; n * d], vec![0.0f32; n]);
        energy.energy_grad_batch(&xs, &mut gs, &mut es);
        for p in (0..n).step_by(37) {
            let x64: Vec<f64> = xs[p * d..(p + 1) * d].iter().map(|&v| v as f64).collect();
            let mut g = vec![0.0f64; d];
            let e = net.energy_grad_ref(&x64, &mut g);
            assert!((es[p] as f64 - e).abs() < 1e-4 * (1.0 + e.abs()), "{spec} point {p}: E {} vs {e}", es[p]);
            let scale = 1.0 + g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in 0..d {
                assert!((gs[p * d + i] as f64 - g[i]).abs() < 1e-4 * scale, "{spec} point {p}: g[{i}]");
            }
        }
    }
}

#[test]
fn files_round_trip_and_mlp_shaped_networks_load_as_mlps() {
    let dir = std::env::temp_dir().join(format!("ebm-nn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (s, spec) in SPECS.iter().enumerate() {
        let net = net(spec, 51 + s as u64);
        let path = dir.join(format!("n{s}.safetensors"));
        net.save(&path).unwrap();
        assert_eq!(Network::load(&path, None).unwrap(), net, "{spec}");
    }
    let mlp_path = dir.join("mlp.safetensors");
    net("2/16/silu/16/silu/1", 5).save(&mlp_path).unwrap();
    let energy = ebm_gpu::energy::spec::resolve_energy(&format!("net:{}", mlp_path.display())).unwrap();
    assert!(
        matches!(&energy, Energy::Net(n) if n.as_mlp().is_some())
            && energy.kind() == "mlp"
            && !energy.has_layered_net(),
        "an MLP-shaped network takes the fused MLP path"
    );
    let conv_path = dir.join("n0.safetensors");
    let energy = ebm_gpu::energy::spec::resolve_energy(&format!("net:{}", conv_path.display())).unwrap();
    assert!(matches!(energy, Energy::Net(_)) && energy.has_layered_net());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pytorch_fixture_matches() {
    for (name, extra_head) in
        [("uva", None), ("jem_pool", Some(("class:3", "energy_class3", "grad_class3"))), ("mlp", None)]
    {
        let net = Network::load(&fixture(&format!("{name}.safetensors")), None).unwrap();
        let io = safetensors_f32(&fixture(&format!("{name}.io.safetensors")));
        let (x, f, energy, grad) = (&io["x"], &io["f"], &io["energy"], &io["grad"]);
        let n = energy.len();
        let d = net.input_dim();
        let mut tape = Tape::default();
        net.forward_batch(x, n, &mut tape);
        let max_f = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            common::max_abs_diff(tape.outputs(), f) < 1e-4 * (1.0 + max_f),
            "{name}: network outputs differ from PyTorch's"
        );
        let check = |net: &Network, energy: &[f32], grad: &[f32], what: &str| {
            let (mut gs, mut es) = (vec![0.0f32; n * d], vec![0.0f32; n]);
            Energy::Net(std::sync::Arc::new(net.clone())).energy_grad_batch(x, &mut gs, &mut es);
            let max_g = grad.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                common::max_abs_diff(&es, energy) < 1e-4 * (1.0 + max_f),
                "{name} {what}: energies {es:?} vs PyTorch {energy:?}"
            );
            assert!(
                common::max_abs_diff(&gs, grad) < 1e-4 * max_g,
                "{name} {what}: input gradients differ from PyTorch's"
            );
        };
        check(&net, energy, grad, "head");
        if let Some((head, e_name, g_name)) = extra_head {
            let mut arch = net.architecture();
            arch.head = Architecture::parse(&format!("1/{}/head:{head}", net.outputs())).unwrap().head;
            let class_net =
                Network::new(&arch, net.layers().iter().map(|l| (l.weight.clone(), l.bias.clone())).collect()).unwrap();
            check(&class_net, &io[e_name], &io[g_name], head);
        }
    }
}

fn safetensors_f32(path: &Path) -> std::collections::HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
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
        .collect()
}

#[test]
fn bad_architectures_are_errors_naming_the_layer() {
    let cases = [
        ("1x4x4/3k7", "larger than the padded input"),
        ("1x8x8/3k3/5", "flat input"),
        ("8/3k3", "image input"),
        ("1x8x8/3k3/bogus/1", "unknown layer"),
        ("2/3/head:f/4", "head comes last"),
        ("2/3/head:f", "needs one output"),
        ("2/3/head:class:3", "out of range"),
        ("2x3/1", "input shape"),
        ("1x8x8/3k3", "ends in an image"),
        ("1x8x8/0k3/flatten/1", "at least 1"),
        ("1x8x8/3kxs2/flatten/1", "unexpected"),
        ("2/silu:nobias/1", "bias to drop"),
        ("1x3x3/avgpool:4/flatten/1", "does not fit"),
        ("", "input"),
        ("1x1x1/1k1s100000p40000/flatten/1", "padding"),
        ("1x100000x100000/flatten/1", "between 1 and"),
        ("2/100000/100000/1", "parameters"),
        ("1x8x8/99999999999999999999k3/flatten/1", "whole number"),
        ("1x8x8/3k3p9999999999999999999/flatten/1", "padding"),
        ("1x8x8/3k3p999999999999999/flatten/1", "padding"),
        // Issue 31: a repeated letter is a typo, not "the last one wins"; slopes that are ReLU
        // (or the identity) under another name.
        ("1x8x8/8k3s2s3p1p0/flatten/1", "layer 0 (\"8k3s2s3p1p0\"): the stride 's' is given twice"),
        ("1x8x8/relu/8k3p1s1p0/flatten/1", "layer 1 (\"8k3p1s1p0\"): the padding 'p' is given twice"),
        ("2/3/leaky_relu:1e-50/1", "layer 1: invalid activation: \"leaky_relu:1e-50\": the slope must be positive"),
        ("2/3/leaky_relu:1e-40/1", "smallest normal"),
        ("2/3/leaky_relu:0/1", "use relu"),
        ("2/3/leaky_relu:-0.2/1", "slope must be positive"),
        ("2/3/leaky_relu:1/1", "below 1"),
        ("2/3/elu:0/1", "alpha must be positive"),
    ];
    for (spec, want) in cases {
        match Architecture::parse(spec) {
            Ok(a) => panic!("{spec:?} parsed as {a}"),
            Err(e) => assert!(e.to_string().contains(want), "{spec:?}: {e} (expected {want:?})"),
        }
    }
    let e = Architecture::parse("1x8x8/3k3/relu/3k7/flatten/1").unwrap_err().to_string();
    assert!(e.contains("layer 2"), "names the layer index: {e}");
    // Each letter once, in either order, still parses; slopes in (0, 1) too.
    for ok in ["1x8x8/3k3p1s2/flatten/1", "2/3/leaky_relu:0.99/elu:2.5/1", "2/3/leaky_relu:1e-30/1"] {
        assert!(Architecture::parse(ok).is_ok(), "{ok}");
    }
}

#[test]
fn bad_files_are_errors_naming_the_tensor() {
    let dir = std::env::temp_dir().join(format!("ebm-nn-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let arch = Architecture::parse("1x6x6/4k3/relu/flatten/2").unwrap();
    let good = Network::random(&arch, 3).unwrap();
    let (tensors, meta) = good.safetensors_parts();
    let write =
        |name: &str, tensors: Vec<(String, Vec<usize>, Vec<f32>)>, meta: std::collections::HashMap<String, String>| {
            let p = dir.join(name);
            ebm_gpu::io::write_safetensors(&p, &tensors, meta).unwrap();
            p
        };
    let missing =
        write("missing.safetensors", tensors.iter().filter(|t| t.0 != "3.bias").cloned().collect(), meta.clone());
    let e = Network::load(&missing, None).unwrap_err().to_string();
    assert!(e.contains("missing tensor 3.bias"), "{e}");
    let mut extra = tensors.clone();
    extra.push(("7.weight".into(), vec![1], vec![0.5]));
    let e = Network::load(&write("extra.safetensors", extra, meta.clone()), None).unwrap_err().to_string();
    assert!(e.contains("7.weight"), "{e}");
    let mut wrong = tensors.clone();
    wrong[0] = ("0.weight".into(), vec![4, 2, 3, 3], vec![0.1; 72]);
    let e = Network::load(&write("wrong.safetensors", wrong, meta.clone()), None).unwrap_err().to_string();
    assert!(
        e.contains("0.weight") && e.contains("[4, 1, 3, 3]"),
        "channel mismatch names the tensor and the shape: {e}"
    );
    // A state_dict without the architecture, then with the wrong one given.
    let bare = write("bare.safetensors", tensors.clone(), Default::default());
    let e = Network::load(&bare, None).unwrap_err().to_string();
    assert!(e.contains("architecture"), "{e}");
    assert_eq!(Network::load(&bare, Some(&arch)).unwrap(), good);
    let e =
        Network::load(&bare, Some(&Architecture::parse("1x6x6/4k3/relu/flatten/3").unwrap())).unwrap_err().to_string();
    assert!(e.contains("3.weight") && e.contains("[3, 64]"), "flatten width vs the Linear's tensor: {e}");
    std::fs::write(dir.join("garbage.safetensors"), b"not a file").unwrap();
    assert!(Network::load(&dir.join("garbage.safetensors"), None).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_models_take_any_network_in_the_text_form() {
    use ebm_gpu::train::ModelSpec;
    let m = ModelSpec::parse("2/32/silu/16/silu/1").unwrap();
    assert_eq!(ModelSpec::parse("mlp:2,32,16,1:silu").unwrap(), m, "the MLP shorthand is the same network");
    assert_eq!(m.build(4).unwrap(), ModelSpec::parse("mlp:2,32,16,1:silu").unwrap().build(4).unwrap());
    let conv = ModelSpec::parse("1x8x8/3k3/silu/flatten/10/head:lse").unwrap();
    let net = conv.build(1).unwrap();
    assert_eq!((net.input_dim(), net.outputs()), (64, 10));
    assert_eq!(conv.param_count(), net.param_count() as u64);
    // run.json keeps the text form, and reads the {dims, activation} of older runs.
    let text = serde_json::to_string(&conv).unwrap();
    assert_eq!(serde_json::from_str::<ModelSpec>(&text).unwrap(), conv);
    let old: ModelSpec = serde_json::from_str(r#"{"dims": [2, 32, 16, 1], "activation": "silu"}"#).unwrap();
    assert_eq!(old, m);
    for bad in ["mlp:2,8,2", "conv:2,8,1", "1x8x8/3k9/flatten/1", ""] {
        let e = ModelSpec::parse(bad).unwrap_err().to_string();
        assert!(e.contains("model"), "{bad:?}: {e}");
    }
}

/// A network term of a spec takes its own head (`"head": "class:Y"`, as `--class` does for a
/// lone network), checked against the network's outputs.
#[test]
fn a_network_term_takes_its_own_head() {
    let dir = common::temp_dir("net-term-head");
    let path = dir.join("classifier.safetensors");
    net("1x4x4/2k3s1p1/silu/flatten/5/head:lse", 3).save(&path).unwrap();
    let spec = |head: &str| {
        format!(
            r#"{{"type": "sum", "terms": [{{"type": "net", "weights": "{}", "head": "{head}"}}, "net:{}"]}}"#,
            path.display(),
            path.display()
        )
    };
    let energy = ebm_gpu::energy::spec::parse_energy(&spec("class:3"), "test").unwrap();
    let Energy::Sum { terms } = &energy else { panic!("{energy:?}") };
    let heads: Vec<Head> = terms
        .iter()
        .map(|(_, t)| match t {
            Energy::Net(n) => n.architecture().head,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(heads, [Head::Class(3), Head::LogSumExp]);
    // E(x, 3) = -f(x)[3] is not the JEM energy the second term computes.
    let x = randn(5, 16);
    let mut g = vec![0.0; 16];
    let (Energy::Net(a), Energy::Net(b)) = (&terms[0].1, &terms[1].1) else { unreachable!() };
    let (ea, eb) = (Energy::Net(a.clone()).energy_grad(&x, &mut g), Energy::Net(b.clone()).energy_grad(&x, &mut g));
    assert!((ea - eb).abs() > 1e-3, "{ea} {eb}");
    for (head, want) in
        [("class:5", "class 5 is out of range"), ("f", "needs one output"), ("mode", "expected f, -f, lse or class:Y")]
    {
        let err = ebm_gpu::energy::spec::parse_energy(&spec(head), "test").unwrap_err().to_string();
        assert!(err.contains("terms[0].head") && err.contains(want), "{head}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ebm classify --samples` judges generated images: the share each classifier gives its
/// `--want` class (as its logits' argmax says) and the share that satisfies all at once.
#[test]
fn classify_judges_samples_by_each_classifiers_wanted_class() {
    let dir = common::temp_dir("classify-samples");
    let (a, b) = (net("1x4x4/2k3s1p1/silu/flatten/3/head:lse", 3), net("16/8/tanh/2/head:lse", 4));
    let (pa, pb) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    a.save(&pa).unwrap();
    b.save(&pb).unwrap();
    let n = 200;
    let xs: Vec<f32> = randn(9, n * 16).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
    let samples = dir.join("samples.npy");
    ebm_gpu::io::npy::write_f32(&samples, &xs, &[n, 16]).unwrap();
    let argmax = |net: &Network| -> Vec<usize> {
        let k = net.outputs();
        let f = net.view().outputs_batch(&xs);
        f.chunks_exact(k).map(|r| (0..k).fold(0, |m, y| if r[y] > r[m] { y } else { m })).collect()
    };
    let (ya, yb) = (argmax(&a), argmax(&b));
    let json = dir.join("judged.json");
    let (ea, eb) = (format!("net:{}", pa.display()), format!("net:{}", pb.display()));
    let args = ["classify", "--samples", common::s(&samples), "--energy", &ea, "--want", "1"];
    let o = common::ebm(
        &[&args[..], &["--energy", &eb, "--want", "0", "--backend", "cpu", "--json", common::s(&json)]].concat(),
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let share = |hits: usize| hits as f64 / n as f64;
    let want_a = share(ya.iter().filter(|&&y| y == 1).count());
    let want_all = share((0..n).filter(|&i| ya[i] == 1 && yb[i] == 0).count());
    assert_eq!(r["classifiers"][0][2].as_f64().unwrap(), want_a);
    assert_eq!(r["classifiers"][1][2].as_f64().unwrap(), share(yb.iter().filter(|&&y| y == 0).count()));
    assert_eq!(r["all"].as_f64().unwrap(), want_all);
    assert!(
        want_all > 0.0 && want_all < want_a,
        "the random networks should make the test discriminate: {want_all} {want_a}"
    );
    // One --want per --energy, and a class the classifier has.
    let o = common::ebm(&[&args[..], &["--energy", &eb]].concat());
    assert!(!o.status.success() && common::stderr(&o).contains("one class per --energy"), "{}", common::stderr(&o));
    let o = common::ebm(&["classify", "--samples", common::s(&samples), "--energy", &ea, "--want", "3"]);
    assert!(!o.status.success() && common::stderr(&o).contains("has 3 classes"), "{}", common::stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
