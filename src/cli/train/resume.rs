//! `ebm train --resume`: the run dir checked as a whole (run.json against the checkpoint's
//! network and settings), then the flags given against the run, before anything is written.

use super::*;
use crate::train::contrastive::Augment;

/// Checks the run against the checkpoint, the data and the flags given; `None` when the run is
/// already complete (its missing final figure written, if any).
pub(super) fn resume(a: &TrainArgs, given: &Given, run_dir: &Path) -> anyhow::Result<Option<Run>> {
    let mut info = read_run(run_dir)?;
    let ckpt = run_dir.join(run::CHECKPOINT);
    let (state, mut config) = checkpoint::load(&ckpt)?;
    check_parts(run_dir, &info, &state, &config)?;
    let same = |flag: &str, run: String, new: String| given.unchanged(flag, run, new, RESUME_MAY_CHANGE);
    // Compared as networks; a difference is reported in the spelling given.
    if let Some(m) = a.model.as_ref().filter(|m| ModelSpec::parse(m).ok().as_ref() != Some(&info.model)) {
        same("--model", info.model.to_string(), m.clone())?;
    }
    given.unchanged_data(
        "--data",
        &info.data,
        info.data_file.as_deref(),
        a.data.as_deref().unwrap_or_default(),
        RESUME_MAY_CHANGE,
    )?;
    same("--train-size", info.train_size.to_string(), a.train_size.to_string())?;
    same("--seed", config.seed.to_string(), a.seed.to_string())?;
    same("--loss", config.loss.to_string(), Loss::parse(&a.loss)?.to_string())?;
    let run_pairs = info.pairs.as_deref().unwrap_or("none");
    given.unchanged_data("--pairs", run_pairs, None, a.pairs.as_deref().unwrap_or_default(), RESUME_MAY_CHANGE)?;
    let (optimizer, beta1, beta2) = match config.optimizer {
        Optimizer::Adam { beta1, beta2, .. } => ("adam", beta1, Some(beta2)),
        Optimizer::Sgd { momentum } => ("sgd", momentum, None),
    };
    let wanted = match a.optimizer {
        OptimizerArg::Adam => "adam",
        OptimizerArg::Sgd => "sgd",
    };
    same("--optimizer", optimizer.into(), wanted.into())?;
    // Flags not given are not compared (their value is the recipe's default, not the run's).
    let text = |v: Option<String>| v.unwrap_or_default();
    same("--beta1", beta1.to_string(), text(a.beta1.map(|v| v.to_string())))?;
    if let Some(beta2) = beta2 {
        same("--beta2", beta2.to_string(), a.beta2.to_string())?;
    }
    let lv = config.langevin;
    for (flag, run, new) in [
        ("--batch", config.batch.to_string(), text(a.batch.map(|v| v.to_string()))),
        ("--subset", info.subset.map_or("all rows".into(), |v| v.to_string()), text(a.subset.map(|v| v.to_string()))),
        ("--lr-decay-to", config.final_lr_fraction.to_string(), text(a.lr_decay_to.map(|v| v.to_string()))),
        ("--lr-gamma", config.epoch_gamma.to_string(), text(a.lr_gamma.map(|v| v.to_string()))),
        ("--weight-decay", config.weight_decay.to_string(), a.weight_decay.to_string()),
        ("--clip-norm", config.clip_norm.to_string(), text(a.clip_norm.map(|v| v.to_string()))),
        ("--alpha", config.alpha.to_string(), text(a.alpha.map(|v| v.to_string()))),
        ("--langevin-steps", lv.steps.to_string(), text(a.langevin_steps.map(|v| v.to_string()))),
        ("--step-size", lv.step_size.to_string(), text(a.step_size.map(|v| v.to_string()))),
        ("--noise-scale", lv.noise_scale.to_string(), text(a.noise_scale.map(|v| v.to_string()))),
        ("--noise-std", lv.noise_std().to_string(), text(a.noise_std.map(|v| v.to_string()))),
        ("--grad-clamp", lv.grad_clamp.to_string(), text(a.grad_clamp.map(|v| v.to_string()))),
        ("--buffer-size", config.buffer_capacity.to_string(), a.buffer_size.to_string()),
        ("--reset-prob", config.reset_prob.to_string(), a.reset_prob.to_string()),
        ("--generator", config.generator.as_ref().map_or("none".into(), |g| g.spec.clone()), text(a.generator.clone())),
        (
            "--generator-lr",
            config.generator.as_ref().map_or("none".into(), |g| g.lr.to_string()),
            text(a.generator_lr.map(|v| v.to_string())),
        ),
        (
            "--latent",
            config.latent.as_ref().map_or("none".into(), |l| l.dim.to_string()),
            text(a.latent.map(|v| v.to_string())),
        ),
        ("--encoder", config.latent.as_ref().map_or("none".into(), |l| l.encoder.clone()), text(a.encoder.clone())),
        (
            "--encoder-lr",
            config.latent.as_ref().map_or("none".into(), |l| l.lr.to_string()),
            text(a.encoder_lr.map(|v| v.to_string())),
        ),
        (
            "--augment",
            config.augment.to_string(),
            text(a.augment.as_deref().map(Augment::parse).transpose()?.map(|v| v.to_string())),
        ),
    ] {
        same(flag, run, new)?;
    }
    match (a.change_lr, a.lr) {
        (true, None) => bail!("--change-lr needs the new --lr"),
        (true, Some(lr)) => {
            eprintln!("learning rate {} -> {lr} from step {} on (--change-lr)", config.lr, state.step);
            config.lr = lr;
        }
        (false, lr) => same("--lr", config.lr.to_string(), text(lr.map(|v| v.to_string())))?,
    }
    let target = match (a.steps, a.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => e.saturating_mul(config.steps_per_epoch.max(1)),
        (None, None) => info.steps,
    };
    if target < state.step {
        bail!("--resume: --steps {target} is below the checkpoint's step {}; a run cannot go back", state.step);
    }
    let (data, labels) = run_data(&mut info, &config)?;
    config.validate(data.len() / config.data_dim()).context("--change-lr")?;
    if state.step == target {
        // Complete; a kill between the final figure and the final checkpoint cannot happen (the
        // figure is written first), but a deleted figure is written again.
        if run::figure_path(run_dir, state.step, &state, &config).is_some_and(|f| !f.exists()) {
            for figure in run::write_figures(run_dir, state.step, &state, &config)? {
                eprintln!("wrote the missing final figure {}", figure.display());
            }
        }
        eprintln!(
            "{} is complete at step {} (--steps {target}); give a larger --steps to train on",
            run_dir.display(),
            state.step
        );
        return Ok(None);
    }
    info.steps = target;
    eprintln!("resuming from step {} (learning-rate scale {})", state.step, state.lr_scale);
    Ok(Some((info, config, state, data, labels)))
}

/// run.json and the checkpoint must describe one run before anything is resumed or rewritten:
/// a run.json edited to another model, or a checkpoint of another run copied in, would train
/// one network while run.json announces another. Refuses naming the file and the field.
fn check_parts(run_dir: &Path, info: &RunInfo, state: &TrainState, config: &TrainConfig) -> anyhow::Result<()> {
    let (json, ckpt) = (run_dir.join(RUN_FILE), run_dir.join(run::CHECKPOINT));
    let differ = |field: &str, recorded: String, held: String| -> anyhow::Result<()> {
        if recorded != held {
            bail!(
                "--resume: {} records {field} {recorded}, but the checkpoint {} holds {held}: the run dir's files \
                 come from different runs; put back the matching file, or start a new run",
                json.display(),
                ckpt.display()
            );
        }
        Ok(())
    };
    differ("model", info.model.to_string(), state.net.architecture().to_string())?;
    differ("seed (--seed)", info.data_seed.to_string(), config.seed.to_string())?;
    if let Some(loss) = &info.loss {
        differ("loss (--loss)", loss.clone(), config.loss.to_string())?;
    }
    if let Some(optimizer) = &info.optimizer {
        differ("optimizer (--optimizer)", optimizer.clone(), optimizer_name(&config.optimizer).to_string())?;
    }
    // The metrics log this run appends to, checked before anything is written.
    crate::io::metrics_rows(&run_dir.join(run::METRICS), &run::metrics_header(config)).context("--resume")?;
    Ok(())
}
