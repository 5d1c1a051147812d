//! Settings from the model (issue 32): `ebm sample` on a training checkpoint runs the sampler the
//! checkpoint stores unless flags override it, and says so; `ebm rbm eval` takes the run's
//! binarisation from run.json; `ebm sample` and `ebm merge` warn when R-hat or bulk ESS fail.

mod common;

use common::{ebm, s, stderr};
use ebm_gpu::nn::{Architecture, Network};
use ebm_gpu::train::{Loss, TrainConfig, TrainState};
use std::path::Path;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A training checkpoint of a small 2-d MLP whose stored ULA differs from every default:
/// step 0.05, noise std 0.5 sqrt(0.1), gradient clamp 2, a box enclosing the data's.
fn checkpoint(dir: &Path) -> (std::path::PathBuf, TrainConfig) {
    let data: Vec<f32> = (0..200).map(|k| ((k * 37) % 101) as f32 / 25.0 - 2.0).collect();
    let mut config = TrainConfig::for_data(Loss::Cd, &data, 2, 5).unwrap();
    config.langevin.step_size = 0.05;
    config.langevin.noise_scale = 0.5;
    config.langevin.grad_clamp = 2.0;
    let net = Network::random(&Architecture::parse("2/16/silu/1").unwrap(), 3).unwrap();
    let state = TrainState::new(net, &config).unwrap();
    let path = dir.join("checkpoint.safetensors");
    ebm_gpu::train::checkpoint::save(&path, &state, &config).unwrap();
    (path, config)
}

#[test]
fn sample_runs_the_checkpoints_sampler_unless_flags_override_it() {
    let dir = common::temp_dir("model-settings-sample");
    let (ckpt, config) = checkpoint(&dir);
    let energy = format!("net:{}", ckpt.display());
    let run = |extra: &[&str], out: &Path| {
        let base =
            ["sample", "--energy", &energy, "--chains", "32", "--steps", "40", "--backend", "cpu", "--seed", "7"];
        let o = ebm(&[&base[..], extra, &["--out", s(out)]].concat());
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        (stdout(&o), std::fs::read(out).unwrap())
    };
    let (said, stored) = run(&[], &dir.join("stored.npy"));
    let lv = config.langevin;
    let lo = config.box_lo.iter().cloned().fold(f32::INFINITY, f32::min);
    let hi = config.box_hi.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let (step, noise, clamp) = (lv.step_size.to_string(), lv.noise_std().to_string(), lv.grad_clamp.to_string());
    let (bounds, init) = (format!("{lo},{hi}"), format!("box:{lo},{hi}"));
    for item in [
        "--sampler ula (checkpoint)".to_string(),
        format!("--step-size {step} (checkpoint)"),
        format!("--noise-std {noise} (checkpoint)"),
        format!("--grad-clamp {clamp} (checkpoint)"),
        format!("--box {bounds} (checkpoint)"),
        format!("--init {init} (checkpoint)"),
    ] {
        assert!(said.contains(&item), "{item:?} not in {said}");
    }
    // The same settings as flags: the same chains, bit for bit.
    let explicit = [
        "--sampler",
        "ula",
        "--step-size",
        &step,
        "--noise-std",
        &noise,
        "--grad-clamp",
        &clamp,
        "--box",
        &bounds,
        "--init",
        &init,
    ];
    let (said_flags, flagged) = run(&explicit, &dir.join("flags.npy"));
    assert!(said_flags.contains(&format!("--step-size {step} (flag)")), "{said_flags}");
    assert_eq!(stored, flagged, "the stored sampler's run differs from the run with its settings as flags");
    // The former name of --noise-std still runs the same chains, with a warning naming the new one.
    let renamed: Vec<&str> = explicit.iter().map(|&a| if a == "--noise-std" { "--noise-scale" } else { a }).collect();
    let old_out = dir.join("old_name.npy");
    let base = ["sample", "--energy", &energy, "--chains", "32", "--steps", "40", "--backend", "cpu", "--seed", "7"];
    let o = ebm(&[&base[..], &renamed, &["--out", s(&old_out)]].concat());
    assert!(o.status.success() && stderr(&o).contains("now spelled --noise-std"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&old_out).unwrap(), flagged, "--noise-scale is --noise-std in ebm sample");
    // A flag overrides the stored value (and only that one).
    let (said_step, stepped) = run(&["--step-size", "0.01"], &dir.join("step.npy"));
    assert!(said_step.contains("--step-size 0.01 (flag)"), "{said_step}");
    assert!(said_step.contains(&format!("--noise-std {noise} (checkpoint)")), "{said_step}");
    assert_ne!(stored, stepped, "--step-size 0.01 was not used");
    // Another algorithm takes none of the ULA's settings; MALA without a step size warms up.
    let (said_mala, _) = run(&["--sampler", "mala"], &dir.join("mala.npy"));
    assert!(said_mala.contains("--step-size 0.01 (default)") && said_mala.contains("--warmup 200"), "{said_mala}");
    assert!(!said_mala.contains("--noise-std"), "{said_mala}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sum of checkpoints (a product of experts) samples with the sampler they all store; when
/// they store different ones, with the defaults.
#[test]
fn a_sum_of_checkpoints_takes_the_sampler_they_share() {
    let dir = common::temp_dir("model-settings-sum");
    let (ckpt, config) = checkpoint(&dir);
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let (other, _) = checkpoint(&other_dir);
    let sample = |terms: &str| {
        let spec = dir.join("sum.json");
        std::fs::write(&spec, format!(r#"{{"type": "sum", "weights": [1, 0.5], "terms": [{terms}]}}"#)).unwrap();
        let base = ["sample", "--energy", s(&spec), "--chains", "8", "--steps", "5", "--backend", "cpu"];
        let o = ebm(&[&base[..], &["--out", s(&dir.join("s.npy"))]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let step = format!("--step-size {} (checkpoint)", config.langevin.step_size);
    let said = sample(&format!(r#""net:{}", {{"type": "net", "weights": "{}"}}"#, ckpt.display(), other.display()));
    assert!(said.contains("--sampler ula (checkpoint)") && said.contains(&step), "{said}");
    // Another step size in the second checkpoint: they disagree, so the defaults run.
    let data: Vec<f32> = (0..200).map(|k| ((k * 37) % 101) as f32 / 25.0 - 2.0).collect();
    let mut changed = TrainConfig::for_data(Loss::Cd, &data, 2, 5).unwrap();
    changed.langevin.step_size = 0.07;
    let net = Network::random(&Architecture::parse("2/16/silu/1").unwrap(), 4).unwrap();
    let state = TrainState::new(net, &changed).unwrap();
    ebm_gpu::train::checkpoint::save(&other, &state, &changed).unwrap();
    let said = sample(&format!(r#""net:{}", "net:{}""#, ckpt.display(), other.display()));
    assert!(said.contains("(default)") && !said.contains("(checkpoint)"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_image_network_without_stored_settings_gets_few_chains() {
    let dir = common::temp_dir("model-settings-image");
    let net = Network::random(&Architecture::parse("1x6x6/3k3s1p1/swish/flatten/1").unwrap(), 3).unwrap();
    let weights = dir.join("net.safetensors");
    net.save(&weights).unwrap();
    let out = dir.join("x.npy");
    let energy = format!("net:{}", weights.display());
    let o = ebm(&["sample", "--energy", &energy, "--steps", "8", "--backend", "cpu", "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--chains 16 (default for images)"), "{}", stdout(&o));
    assert_eq!(ebm_gpu::io::npy::read_f32(&out).unwrap().1, vec![16, 36]);
    std::fs::remove_dir_all(&dir).unwrap();
}

const RHAT_WARNING: &str = "R-hat above 1.01";

/// ring8 by MALA with a small fixed step and no tempering: each chain stays in the mode it
/// starts near, so the chains disagree; with tempering the chains cross between the modes.
const STUCK: &[&str] = &["--sampler", "mala", "--step-size", "0.05", "--steps", "200"];
const MIXED: &[&str] = &[
    "--sampler",
    "mala",
    "--step-size",
    "0.1",
    "--tempering",
    "8",
    "--max-temperature",
    "30",
    "--steps",
    "6000",
    "--thin",
    "20",
];

#[test]
fn sample_and_merge_warn_on_chains_that_disagree() {
    let dir = common::temp_dir("model-settings-rhat");
    for (name, flags, stuck) in [("stuck", STUCK, true), ("mixed", MIXED, false)] {
        let base = ["sample", "--energy", "ring8", "--chains", "64", "--backend", "cpu", "--seed", "3"];
        let o = ebm(&[&base[..], flags].concat());
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (said, warned) = (stdout(&o), stderr(&o));
        assert!(said.contains("convergence: worst R-hat"), "{name}: {said}");
        assert_eq!(warned.contains(RHAT_WARNING), stuck, "{name}: {said}\n{warned}");
        // The same run in two shards, joined: the same verdict from merge.
        let mut traces = Vec::new();
        for i in 0..2 {
            let t = dir.join(format!("{name}{i}.npy"));
            let shard = format!("{i}/2");
            let o = ebm(&[&base[..], flags, &["--shard", &shard, "--trace", s(&t)]].concat());
            assert!(o.status.success(), "{name} shard {i}: {}", stderr(&o));
            traces.push(t);
        }
        let joined = dir.join(format!("{name}.npy"));
        let o = ebm(&["merge", "--out", s(&joined), s(&traces[0]), s(&traces[1])]);
        assert!(o.status.success(), "{name} merge: {}", stderr(&o));
        assert_eq!(stderr(&o).contains(RHAT_WARNING), stuck, "{name} merge: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rbm_eval_takes_the_runs_binarisation_and_warns_on_another() {
    let dir = common::temp_dir("model-settings-rbm");
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits");
    let run = dir.join("run");
    let o = ebm(&[
        "rbm",
        "train",
        "--data",
        s(&digits),
        "--binarize",
        "threshold",
        "--limit",
        "100",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--batch",
        "50",
        "--backend",
        "cpu",
        "--run-dir",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval = |extra: &[&str]| {
        let o =
            ebm(&[&["rbm", "eval", "--run-dir", s(&run), "--exact", "--limit", "50", "--backend", "cpu"], extra]
                .concat());
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let ll = stdout(&o).lines().find(|l| l.starts_with("test log-likelihood")).unwrap().to_string();
        (stdout(&o), stderr(&o), ll)
    };
    let (said, warned, stored_ll) = eval(&[]);
    assert!(said.contains("--binarize threshold (run.json)"), "{said}");
    assert!(said.contains(&format!("--data {} (run.json)", digits.display())), "{said}");
    assert!(!warned.contains("warning"), "{warned}");
    let (_, warned, flagged_ll) = eval(&["--data", s(&digits), "--binarize", "threshold"]);
    assert!(!warned.contains("warning"), "{warned}");
    assert_eq!(stored_ll, flagged_ll);
    let (said, warned, other_ll) = eval(&["--binarize", "stochastic"]);
    assert!(said.contains("--binarize stochastic (flag)"), "{said}");
    assert!(warned.contains("--binarize stochastic differs from the run's --binarize threshold"), "{warned}");
    assert_ne!(stored_ll, other_ll);
    std::fs::remove_dir_all(&dir).unwrap();
}
