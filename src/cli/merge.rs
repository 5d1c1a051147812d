//! `ebm merge`: joins the outputs of `ebm sample --shard I/N` runs into what one run of all the
//! chains writes: final states `[chains, dim]` along the chains, traces `[draws, chains, dim]`
//! along their chain axis, and diagnostics recomputed from the joined trace.

use std::path::PathBuf;

use crate::eval::diagnostics;
use crate::io;
use anyhow::{Context, bail};

/// Join the .npy outputs of `ebm sample --shard I/N` runs (each with the shard record written
/// beside it; any order), into the file one
/// run of all the chains writes: final states ([chains, dim]) are stacked along the chains,
/// traces ([draws, chains, dim]) along their chain axis. The result is bit-identical to the
/// unsharded run on the same executor.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Example, four shards of 4096 chains:\n  for i in 0 1 2 3; do ebm sample --energy ring8 --chains 4096 \
--shard $i/4 --out s$i.npy --trace t$i.npy; done\n  ebm merge --out samples.npy s0.npy s1.npy s2.npy s3.npy\n  \
ebm merge --out trace.npy --diagnostics diag.json t0.npy t1.npy t2.npy t3.npy"
)]
pub struct MergeArgs {
    /// The shards' .npy files (each FILE with its FILE.shard.json beside it), in any order.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// Write the joined states or trace to this .npy file.
    #[arg(long)]
    pub out: PathBuf,
    /// For traces: also write per-dimension diagnostics of the joined chains as JSON (mean, sd,
    /// quantiles, split R-hat, bulk and tail ESS; see `ebm sample --diagnostics`). Joined
    /// traces are checked without it too: R-hat above 1.01 or a bulk ESS below 400 is warned.
    #[arg(long)]
    pub diagnostics: Option<PathBuf>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let mut paths = crate::cli::outputs::Paths::new();
    for input in &args.inputs {
        paths.input("input", input);
    }
    paths.output("--out", &args.out, &["npy"])?;
    if let Some(d) = &args.diagnostics {
        paths.output("--diagnostics", d, &["json"])?;
    }
    let mut shards = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let (data, shape) = io::npy::read_f32(input)?;
        shards.push((input, data, shape));
    }
    // Each array's provenance record says which shard of which run it is: only the shards of
    // one run, each once, are joined, in shard order whatever the order given.
    let chains_of = |s: &[usize]| if s.len() == 3 { s[1] } else { s.first().copied().unwrap_or(0) };
    let views: Vec<_> = shards.iter().map(|(p, d, s)| (p.as_path(), d.as_slice(), chains_of(s))).collect();
    let order = crate::cli::shard::check_join(&views)?;
    let mut slots: Vec<_> = shards.into_iter().map(Some).collect();
    let shards: Vec<_> = order.iter().filter_map(|&k| slots[k].take()).collect();
    let (_, _, first) = &shards[0];
    // The chain axis: 0 for states [chains, dim], 1 for traces [draws, chains, dim].
    let axis = match first.len() {
        2 => 0,
        3 => 1,
        n => bail!(
            "{}: a {n}-d array; ebm merge joins final states [chains, dim] or traces [draws, chains, dim]",
            shards[0].0.display()
        ),
    };
    let mut shape = first.clone();
    shape[axis] = 0;
    for (path, _, s) in &shards {
        let same_rest =
            s.len() == first.len() && s.iter().zip(first.iter()).enumerate().all(|(k, (a, b))| k == axis || a == b);
        if !same_rest {
            bail!(
                "{}: shape {s:?} does not match {}'s {first:?} except along the chains",
                path.display(),
                shards[0].0.display()
            );
        }
        shape[axis] += s[axis];
    }
    if args.diagnostics.is_some() && axis == 0 {
        bail!("--diagnostics needs traces ([draws, chains, dim], from `ebm sample --trace`), not final states");
    }
    // Row-major: everything before the chain axis is the outer loop (draws for a trace).
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut joined = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (_, data, s) in &shards {
            let block = s[axis] * inner;
            joined.extend_from_slice(&data[o * block..(o + 1) * block]);
        }
    }
    // The diagnostics are computed before anything is written, so a failure leaves no joined
    // array behind without the report asked for with it.
    // Joined traces are always checked (R-hat, bulk ESS), the table printed with --diagnostics.
    let checked = (axis == 1).then(|| diagnostics::summarize_trace(&joined, shape[1], shape[2]));
    let summaries = match checked {
        None => None,
        Some(Ok(summaries)) => Some(summaries),
        Some(Err(e)) if args.diagnostics.is_none() => {
            println!("convergence: not checked ({e})");
            None
        }
        Some(Err(e)) => {
            return Err(e).with_context(|| format!("diagnostics of the joined trace for {}", args.out.display()));
        }
    };
    let report = match (&args.diagnostics, &summaries) {
        (Some(_), Some(summaries)) => {
            let chains = shape[1];
            crate::cli::sample::print_summaries(summaries);
            Some(serde_json::json!({
                "chains": chains,
                "draws_per_chain": shape[0],
                "shards": shards.iter().map(|(p, ..)| p.display().to_string()).collect::<Vec<_>>(),
                "dimensions": summaries.iter().enumerate().map(|(i, s)| serde_json::json!({
                    "dim": i, "mean": s.mean, "sd": s.sd, "q05": s.q05, "q50": s.q50, "q95": s.q95,
                    "rhat": s.rhat, "ess_bulk": s.ess_bulk, "ess_tail": s.ess_tail, "chains_used": s.chains,
                })).collect::<Vec<_>>(),
                "warnings": diagnostics::convergence_warnings(summaries),
            }))
        }
        (None, Some(summaries)) => {
            crate::cli::sample::warn_convergence(summaries);
            None
        }
        _ => None,
    };
    io::npy::write_f32(&args.out, &joined, &shape)?;
    println!("wrote {} {shape:?} from {} shards", args.out.display(), shards.len());
    if let (Some(path), Some(report)) = (&args.diagnostics, report) {
        io::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
