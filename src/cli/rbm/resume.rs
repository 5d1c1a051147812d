//! What `ebm rbm train --resume` checks before it continues a run: the data, model and settings
//! given against the run's, each refusal naming the setting with both values.

use super::*;

/// A learning-rate schedule as --lr-schedule spells it, for messages.
fn schedule_text(s: &LrSchedule) -> String {
    match s {
        LrSchedule::Constant => "constant".to_string(),
        LrSchedule::Linear { final_fraction } => format!("linear:{final_fraction}"),
        LrSchedule::Exponential { gamma } => format!("exp:{gamma}"),
    }
}

/// Refuses a resume whose data, model or settings given differ from the run's, naming the
/// setting with the run's and the new value.
pub(super) fn check_resume(
    a: &TrainArgs,
    given: &Given,
    recorded: Option<&RunData>,
    now: &RunData,
    state: &TrainState,
    saved: &TrainConfig,
    asked: &TrainConfig,
) -> anyhow::Result<()> {
    let same = |flag: &str, run: String, new: String| given.unchanged(flag, run, new, RESUME_MAY_CHANGE);
    match recorded {
        Some(run) => {
            let (typed, now_typed) = (run.data.display().to_string(), now.data.display().to_string());
            given.unchanged_data("--data", &typed, run.data_file.as_deref(), &now_typed, RESUME_MAY_CHANGE)?;
            same("--binarize", run.binarize.clone(), now.binarize.clone())?;
            same("--data-seed", run.data_seed.to_string(), now.data_seed.to_string())?;
            let limit = |l: Option<usize>| l.map_or_else(|| "unset (all rows)".to_string(), |n| n.to_string());
            same("--limit", limit(run.limit), limit(now.limit))?;
            if run.data_hash != now.data_hash {
                bail!(
                    "--resume: the training data {} changed since the run started (fingerprint {}, now {}); \
                     resume with the original data, or start a new run",
                    now.data.display(),
                    run.data_hash,
                    now.data_hash
                );
            }
        }
        // Without it the data cannot be verified, and the resume would write a run.json
        // describing whatever data it was given as the run's.
        None => bail!(
            "--resume: {} has no {RUN_FILE}, so the data the run trained on cannot be verified against \
             --data {}; put back its {RUN_FILE}, or start a new run",
            a.dir()?.join(RUN_FILE).display(),
            now.data.display()
        ),
    }
    same("--hidden", state.rbm.n_hid.to_string(), a.hidden.to_string())?;
    same("--gaussian", (state.rbm.visible == Visible::Gaussian).to_string(), a.gaussian.to_string())?;
    let method_given = given.has("--cd") || given.has("--pcd");
    if method_given && saved.method != asked.method {
        bail!(
            "--resume: the method was {} in this run, not {}; a resume keeps it ({RESUME_MAY_CHANGE})",
            saved.method,
            asked.method
        );
    }
    same("--batch", saved.batch.to_string(), asked.batch.to_string())?;
    same("--lr-schedule", schedule_text(&saved.schedule), schedule_text(&asked.schedule))?;
    same("--momentum", saved.momentum.to_string(), asked.momentum.to_string())?;
    same("--weight-decay", saved.weight_decay.to_string(), asked.weight_decay.to_string())?;
    same("--seed", saved.seed.to_string(), asked.seed.to_string())?;
    if a.change_lr {
        if !given.has("--lr") {
            bail!("--change-lr needs the new --lr");
        }
        eprintln!("learning rate {} -> {} from epoch {} on (--change-lr)", saved.lr, asked.lr, state.epoch + 1);
    } else {
        same("--lr", saved.lr.to_string(), asked.lr.to_string())?;
    }
    Ok(())
}
