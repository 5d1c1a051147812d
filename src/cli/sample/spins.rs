//! `ebm sample` on a discrete model (`ising:`, `potts:`, `bm:`, `hopfield:`): block Gibbs or
//! Metropolis sweeps or Swendsen–Wang and Wolff cluster steps, on either executor;
//! observables (energy per site, |m|, susceptibility, specific heat, Hopfield overlaps) with
//! their autocorrelation times; integer states as .npy int8 (or CSV) and lattice pictures.

use super::{SampleArgs, SamplerArg};
use crate::cli::backend::{self, Backend};
use crate::discrete::cluster::gpu::GpuClusterChains;
use crate::discrete::cluster::{Cluster, ClusterChains};
use crate::discrete::cpu::CpuSpins;
use crate::discrete::gpu::GpuSpins;
use crate::discrete::observables::{self, Thermo, measure};
use crate::discrete::rules::Update;
use crate::discrete::tempering::{Replica, Tempered};
use crate::discrete::{Lattice, Layout, SpinModel, random_states, spec};
use crate::eval::diagnostics::MIN_DRAWS;
use crate::plan::{Plan, Work};
use anyhow::{Context, bail};
use std::path::Path;
use std::time::Instant;

/// The chains of one run: one replica, or replicas on a temperature ladder.
enum Chains {
    Plain(Box<Replica>),
    Tempered(Tempered),
}

impl Chains {
    fn run(&mut self, n: u32) -> anyhow::Result<()> {
        match self {
            Chains::Plain(r) => r.run(n)?,
            Chains::Tempered(t) => t.run(n)?,
        }
        Ok(())
    }

    fn states(&self) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Chains::Plain(r) => r.states()?,
            Chains::Tempered(t) => t.states()?,
        })
    }
}

/// The flags of continuous sampling a discrete run does not use, refused when given so that
/// nothing is silently ignored.
fn refuse_continuous_flags(args: &SampleArgs) -> anyhow::Result<()> {
    let given = [
        ("--fix", args.fix.is_some()),
        ("--class", args.class.is_some()),
        ("--noise-std", args.noise_std.is_some()),
        ("--grad-clamp", args.grad_clamp.is_some()),
        ("--box", args.box_clamp.is_some()),
        ("--target-accept", args.target_accept.is_some()),
        ("--adapt-per-chain", args.adapt_per_chain),
        ("--no-adapt-mass", args.no_adapt_mass),
        ("--step-size", args.step_size != 0.01),
        ("--leapfrog", args.leapfrog != 10 || args.leapfrog_jitter != 0),
        ("--init-std", args.init_std != 1.0),
        ("--trace", args.trace.is_some()),
        ("--shard", args.shard.is_some()),
        ("--no-check", args.no_check),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
        bail!(
            "{flag} is not used when sampling a discrete model ({}); discrete runs take --sampler, --chains, \
             --steps, --warmup, --thin, --init, --seed, --backend, --tempering (--max-temperature, --temperatures, \
             --swap-every), --out, --png and --diagnostics",
            args.energy
        );
    }
    Ok(())
}

fn method(args: &SampleArgs) -> anyhow::Result<(&'static str, Option<Update>, Option<Cluster>)> {
    Ok(match args.sampler.unwrap_or(SamplerArg::Gibbs) {
        SamplerArg::Gibbs => ("gibbs", Some(Update::Gibbs), None),
        SamplerArg::Metropolis => ("metropolis", Some(Update::Metropolis), None),
        SamplerArg::SwendsenWang => ("swendsen-wang", None, Some(Cluster::SwendsenWang)),
        SamplerArg::Wolff => ("wolff", None, Some(Cluster::Wolff)),
        SamplerArg::Synchronous => ("synchronous", None, None),
        other => bail!(
            "--sampler {} is for continuous energies; a discrete model takes gibbs, metropolis, swendsen-wang, wolff or synchronous",
            clap::ValueEnum::to_possible_value(&other).map_or_else(String::new, |v| v.get_name().to_string())
        ),
    })
}

/// Initial states (bytes in site order): `--init` random (the default), `up` (every site in
/// state 1: spin +1, unit on; label 0 for Potts), or a .npy/.csv file of rows of values in the
/// model's convention (row chain mod rows).
fn initial(args: &SampleArgs, model: &SpinModel, chains: usize) -> anyhow::Result<Vec<u8>> {
    let n = model.sites();
    match args.init.as_str() {
        "gaussian" | "random" => Ok(random_states(args.seed, 0, chains, n, model.q)),
        "up" => Ok(vec![if model.q == 2 { 1 } else { 0 }; chains * n]),
        file => {
            let (values, rows, width) =
                crate::io::read_samples(Path::new(file)).with_context(|| format!("--init {file}"))?;
            if width != n || rows == 0 {
                bail!("--init {file}: rows of {width} values, the model has {n} sites");
            }
            let bytes: Vec<u8> = values
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    model.byte(v).with_context(|| {
                        format!("--init {file}: row {}, site {} holds {v}, not a state of {}", k / n, k % n, model.name)
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            Ok((0..chains).flat_map(|c| bytes[c % rows * n..][..n].to_vec()).collect())
        }
    }
}

/// Memory and work, refused before anything is allocated when absurd.
fn plan(args: &SampleArgs, model: &SpinModel) -> anyhow::Result<()> {
    let replicas = super::ladder(args)?.map_or(1, |l| l.replicas()) as u64;
    let (chains, n) = (args.chains as u64 * replicas, model.sites() as u64);
    let mut plan = Plan::new();
    // States, packed words, the read-back copy and a measurement's unpacked copy.
    plan.add(format!("--chains {} x {n} sites", args.chains), "the chain states", &[chains, n], 1, 8);
    let draws = (args.steps / args.thin) as u64;
    plan.add(
        format!("--steps {} / --thin {} x --chains {}", args.steps, args.thin, args.chains),
        "the observables' draws",
        &[draws, chains],
        8,
        6,
    );
    if args.out.is_some() {
        plan.add("--out", "the written states", &[chains, n], 4, 1);
    }
    plan.check()?;
    let edges = model.graph.neighbours.len().max(1) as u64;
    let mut work = Work::new();
    for (flag, steps) in [("--steps", args.steps), ("--warmup", args.warmup)] {
        work.add(
            format!("--chains {} x {flag} {steps}", args.chains),
            format!("sweeps of {n} sites and {edges} couplings"),
            &[chains, steps as u64, edges],
        );
    }
    work.check()?;
    Ok(())
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    let model =
        spec::parse(&args.energy)?.with_context(|| format!("--energy {} is not a discrete model", args.energy))?;
    refuse_continuous_flags(args)?;
    let (name, update, cluster) = method(args)?;
    let mut paths = crate::cli::outputs::Paths::new();
    if let Some(file) = model_file(&args.energy) {
        paths.input("--energy", Path::new(file));
    }
    for (path, flag, ext) in [
        (&args.out, "--out", &["npy", "csv"][..]),
        (&args.png, "--png", &["png"]),
        (&args.diagnostics, "--diagnostics", &["json"]),
    ] {
        if let Some(p) = path {
            paths.output(flag, p, ext)?;
        }
    }
    plan(args, &model)?;
    let draws = args.steps / args.thin;
    if args.diagnostics.is_some() && (draws as usize) < MIN_DRAWS {
        bail!(
            "--diagnostics needs at least {MIN_DRAWS} draws per chain, but --steps {} / --thin {} gives {draws}",
            args.steps,
            args.thin
        );
    }
    let chains = args.chains as usize;
    let init = initial(args, &model, chains)?;
    // Synchronous (zero-temperature Hopfield) updates have no GPU kernel.
    let cpu_only = update.is_none() && cluster.is_none();
    let ctx = match (cpu_only, args.backend) {
        (true, Backend::Gpu) => bail!("--sampler {name} runs on the CPU executor only (use --backend cpu or auto)"),
        (true, _) => None,
        (false, b) => backend::open(b)?,
    };
    let executor = backend::describe(ctx.as_ref());
    let make = |m: &SpinModel, seed: u64| -> crate::Result<Replica> {
        Ok(match (update, cluster, &ctx) {
            (Some(u), _, Some(ctx)) => Replica::Gpu(GpuSpins::new(ctx.clone(), m, u, &init, seed, 0)?),
            (Some(u), _, None) => Replica::Cpu(CpuSpins::new(m, u, &init, seed, 0)?),
            (_, Some(c), Some(ctx)) => Replica::GpuCluster(GpuClusterChains::new(ctx.clone(), m, c, &init, seed, 0)?),
            (_, Some(c), None) => Replica::Cluster(ClusterChains::new(m, c, &init, seed, 0)?),
            (None, None, _) => Replica::Cpu(CpuSpins::synchronous(m, &init)?),
        })
    };
    let ladder = super::ladder(args)?;
    if ladder.is_some() && model.beta.is_infinite() {
        bail!("--tempering needs a finite beta (this model is at zero temperature)");
    }
    let mut sampler = match &ladder {
        Some(l) => Chains::Tempered(Tempered::new(&model, l, args.seed, 0, chains, make)?),
        None => Chains::Plain(Box::new(make(&model, args.seed)?)),
    };
    let colours = Layout::new(&model.graph.colouring()).classes.len();
    let rule = if cluster.is_some() {
        "Fortuin-Kasteleyn clusters"
    } else if update.is_none() {
        "zero temperature, every site at once"
    } else if model.beta.is_infinite() {
        "zero temperature (sign of the field)"
    } else if uniform_model(&model) {
        "table (GPU = CPU bit for bit)"
    } else {
        "float (GPU = CPU up to exp() rounding)"
    };
    let tempering = ladder.as_ref().map_or_else(String::new, |l| format!(" x {} replicas", l.replicas()));
    println!(
        "{} ({} sites, q = {}, beta = {}, {colours} colours); {name}, rule {rule}; {chains} chains{tempering} x {} steps after {} warm-up on {executor}",
        model.name,
        model.sites(),
        model.q,
        model.beta,
        args.steps,
        args.warmup
    );
    let start = Instant::now();
    sampler.run(args.warmup)?;
    let (mut energy, mut magnetisation) = (vec![Vec::new(); chains], vec![Vec::new(); chains]);
    let mut factor = vec![Vec::new(); chains];
    let mut bar = crate::cli::progress::Progress::new(
        "sampling",
        "steps",
        args.steps as u64,
        "{bar:40} {pos}/{len} steps  {per_sec}  eta {eta}",
    );
    let mut done = 0;
    while done < args.steps {
        let n = args.thin.min(args.steps - done);
        sampler.run(n)?;
        done += n;
        if n == args.thin {
            let states = sampler.states()?;
            for (c, row) in states.chunks(model.sites()).enumerate() {
                let (e, m) = measure(&model, row);
                energy[c].push(e);
                magnetisation[c].push(m);
                if let Some(f) = observables::structure_factor_min(&model, row) {
                    factor[c].push(f);
                }
            }
        }
        bar.set_position(done as u64);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let states = sampler.states()?;
    let updates = chains as f64 * model.sites() as f64 * (args.steps + args.warmup) as f64;
    let per = if cluster == Some(Cluster::Wolff) { "cluster flips" } else { "sweeps" };
    let steps = args.steps + args.warmup;
    if cluster == Some(Cluster::Wolff) {
        println!("time {seconds:.3} s for {steps} {per}");
    } else {
        println!("time {seconds:.3} s for {steps} {per}, {:.3e} site updates/s", updates / seconds);
    }
    let swap_rates = match &sampler {
        Chains::Tempered(t) => Some(t.swap_rates()),
        Chains::Plain(_) => None,
    };
    if let Some(rates) = &swap_rates {
        println!(
            "swap acceptance per neighbour pair: {}",
            rates.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ")
        );
    }
    let thermo = (draws as usize >= MIN_DRAWS)
        .then(|| observables::thermo(model.beta as f64, model.sites(), &energy, &magnetisation))
        .transpose()?;
    if let Some(t) = &thermo {
        print_thermo(t, args.thin);
    }
    let side = model.graph.lattice.as_ref().map_or(0, |(_, sides)| sides[0]);
    let correlation_length = (thermo.is_some() && factor[0].len() == energy[0].len())
        .then(|| observables::correlation_length(side, model.sites(), &magnetisation, &factor))
        .flatten();
    if let Some(xi) = correlation_length {
        println!("correlation length {xi:.3} sites (second moment; reliable while it is well below the side, {side})");
    }
    let onsager = onsager_reference(&model);
    if let Some((u, m)) = onsager {
        println!("Onsager (infinite lattice): energy per site {u:.5}, |m| {m:.5}");
    }
    // Small models have exact answers: enumerate (at most 2^20 configurations here).
    let small = (model.q as u64).checked_pow(model.sites() as u32).is_some_and(|c| c <= 1 << 20);
    let exact = (small && model.beta.is_finite()).then(|| crate::discrete::exact::expectations(&model)).transpose()?;
    if let Some((u, m)) = exact {
        println!("exact (enumeration): energy per site {u:.5}, |m| {m:.5}");
    }
    let overlaps = model.patterns.as_ref().map(|p| {
        let per_chain: Vec<Vec<f64>> = states.chunks(model.sites()).map(|row| observables::overlaps(p, row)).collect();
        let best: Vec<f64> = per_chain.iter().map(|o| o.iter().fold(0.0f64, |a, &b| a.max(b.abs()))).collect();
        println!(
            "Hopfield: mean best |overlap| with a stored pattern {:.4} over {chains} chains",
            best.iter().sum::<f64>() / chains as f64
        );
        per_chain
    });
    if let Some(path) = &args.out {
        let values: Vec<i8> = states.iter().map(|&b| model.value(b)).collect();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            let floats: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            crate::io::write_samples(path, &floats, chains, model.sites())?;
        } else {
            crate::io::npy::write_i8(path, &values, &[chains, model.sites()])?;
        }
        println!("wrote {} [{chains}, {}] ({})", path.display(), model.sites(), convention(&model));
    }
    if let Some(path) = &args.png {
        write_png(path, &model, &states)?;
        println!("wrote {}", path.display());
    }
    // At zero temperature the chains descend to fixed points: nothing to converge to one law.
    let warnings = thermo.as_ref().filter(|_| model.beta.is_finite()).map_or_else(Vec::new, |t| {
        let rhat = t.energy_per_site.rhat.max(t.abs_magnetisation.rhat);
        if rhat > crate::eval::diagnostics::MAX_RHAT {
            let remedy = if cluster.is_some() {
                "run longer (--steps, --warmup)"
            } else {
                "run longer (--steps, --warmup) or, near a transition, use --sampler swendsen-wang or wolff"
            };
            vec![format!(
                "R-hat {rhat:.3} above {}: the chains disagree, so their draws are not yet samples of one distribution; {remedy}",
                crate::eval::diagnostics::MAX_RHAT
            )]
        } else {
            Vec::new()
        }
    });
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &args.diagnostics {
        let report = serde_json::json!({
            "energy": args.energy,
            "sites": model.sites(),
            "q": model.q,
            "beta": if model.beta.is_finite() { Some(model.beta) } else { None },
            "colours": colours,
            "sampler": name,
            "rule": rule,
            "executor": executor,
            "chains": chains,
            "steps": args.steps,
            "warmup": args.warmup,
            "thin": args.thin,
            "seconds": seconds,
            "site_updates_per_second": (cluster != Some(Cluster::Wolff)).then_some(updates / seconds),
            "observables": thermo,
            "correlation_length": correlation_length,
            "onsager": onsager.map(|(u, m)| serde_json::json!({"energy_per_site": u, "magnetisation": m})),
            "swap_rates": swap_rates,
            "temperatures": ladder.as_ref().map(|l| l.betas.iter().map(|b| 1.0 / b).collect::<Vec<f32>>()),
            "exact": exact.map(|(u, m)| serde_json::json!({"energy_per_site": u, "abs_magnetisation": m})),
            "overlaps": overlaps,
            "warnings": warnings,
        });
        crate::io::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn model_file(energy: &str) -> Option<&str> {
    let s = energy.trim();
    let rest = s
        .strip_prefix("bm:")
        .or_else(|| s.strip_prefix("hopfield:"))
        .or_else(|| s.split_once("graph:").map(|(_, r)| r))?;
    Some(rest.split(',').next().unwrap_or(rest).trim())
}

fn uniform_model(model: &SpinModel) -> bool {
    (model.graph.uniform_coupling().is_some() || model.graph.neighbours.is_empty())
        && model.field.iter().all(|h| h.to_bits() == model.field[0].to_bits())
}

fn convention(model: &SpinModel) -> &'static str {
    match model.convention {
        crate::discrete::Convention::Spins => "int8 spins ±1",
        crate::discrete::Convention::Bits => "int8 units 0/1",
        crate::discrete::Convention::Labels => "int8 labels 0..q-1",
    }
}

fn print_thermo(t: &Thermo, thin: u32) {
    let line = |name: &str, e: &observables::Estimate| {
        println!(
            "{name:<16} {:>9.5} ± {:.5}  (ESS {:.0}, autocorrelation {:.1} draws of {thin} steps, R-hat {:.3})",
            e.mean, e.standard_error, e.ess, e.autocorrelation_time, e.rhat
        )
    };
    line("energy per site", &t.energy_per_site);
    line("|m|", &t.abs_magnetisation);
    if let (Some(chi), Some(c)) = (t.susceptibility, t.specific_heat) {
        println!("susceptibility   {chi:>9.5}   specific heat {c:.5} (per site)");
    }
}

/// Onsager's values when the model is the square-lattice Ising model with J = 1, h = 0.
fn onsager_reference(model: &SpinModel) -> Option<(f64, f64)> {
    let square = matches!(&model.graph.lattice, Some((Lattice::Square, _)));
    let plain = model.q == 2 && model.graph.uniform_coupling() == Some(1.0) && model.field.iter().all(|&h| h == 0.0);
    (square && plain && model.beta.is_finite()).then(|| {
        (observables::onsager_energy(model.beta as f64), observables::onsager_magnetisation(model.beta as f64))
    })
}

/// Up to 16 chains' final states as pictures: 2-D lattices as themselves (the first layer of a
/// cubic one), other graphs as a near-square block of sites in index order.
fn write_png(path: &Path, model: &SpinModel, states: &[u8]) -> anyhow::Result<()> {
    let n = model.sites();
    let (h, w) = match &model.graph.lattice {
        Some((_, sides)) => (sides[1], sides[0]),
        None => {
            let w = (n as f64).sqrt().ceil() as usize;
            (n.div_ceil(w), w)
        }
    };
    let shown = (states.len() / n).min(16);
    let scale = (model.q - 1).max(1) as f32;
    let mut images = vec![0.5f32; shown * h * w];
    for c in 0..shown {
        for k in 0..(h * w).min(n) {
            images[c * h * w + k] = states[c * n + k] as f32 / scale;
        }
    }
    let zoom = (256 / h.max(w)).clamp(1, 16);
    let title = format!("final states of {shown} chains");
    crate::io::figure::ImageGrid::new(title, (1, h, w)).cols(4).zoom(zoom).png(path, &images)?;
    Ok(())
}
