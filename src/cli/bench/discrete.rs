//! `ebm bench --suite discrete`: site updates per second of discrete models on the GPU and CPU
//! executors, in a table of its own (a sweep's cost is per site, not per chain): the square
//! Ising lattice at 256² and 1024², a sparse random graph (Erdős–Rényi, mean degree 4), the
//! 3-state Potts lattice, and Swendsen–Wang (away from and at T_c). bench/thrml_ising.py runs the same
//! workloads in THRML.

use super::roofline::{Cost, Peaks, discrete as model_cost};
use super::roofline_table::roof;
use super::{BenchArgs, SEED, si};
use crate::discrete::cluster::gpu::GpuClusterChains;
use crate::discrete::cluster::{Cluster, ClusterChains};
use crate::discrete::cpu::CpuSpins;
use crate::discrete::gpu::GpuSpins;
use crate::discrete::rules::{Rules, Update};
use crate::discrete::{Graph, Layout, SpinModel, random_states, spec};
use crate::gpu::GpuContext;
use anyhow::Result;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

pub(super) struct Row {
    executor: &'static str,
    /// The roofline model's work per site update.
    cost: Cost,
    model: String,
    sites: usize,
    sampler: &'static str,
    chains: usize,
    sweeps: u32,
    seconds: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.chains as f64 * self.sites as f64 * self.sweeps as f64 / self.seconds
    }
}

/// A seeded Erdős–Rényi graph on `n` vertices with mean degree 4 (n * 2 distinct edges drawn
/// uniformly; self-loops and repeats redrawn), J = 1.
fn random_graph(n: usize) -> Result<Graph> {
    let mut seen = std::collections::HashSet::new();
    let mut edges = Vec::with_capacity(2 * n);
    let mut draw = 0u32;
    while edges.len() < 2 * n {
        let bits = crate::rng::philox4x32_10([draw, 0, crate::rng::Stream::Init as u32, 0], crate::rng::key(SEED));
        draw += 1;
        let (i, j) = (((bits[0] as u64 * n as u64) >> 32) as usize, ((bits[1] as u64 * n as u64) >> 32) as usize);
        if i != j && seen.insert((i.min(j), i.max(j))) {
            edges.push((i, j, 1.0));
        }
    }
    Ok(Graph::from_edges(n, &edges, "the benchmark graph")?)
}

/// (model, chains, sweeps, sampler): sweeps chosen for about 2e8 site updates per CPU timing
/// (quick: tiny lattices).
fn cases(quick: bool) -> Result<Vec<(SpinModel, usize, u32, &'static str)>> {
    let parse = |s: &str| -> Result<SpinModel> { Ok(spec::parse(s)?.expect("a discrete spec")) };
    if quick {
        return Ok(vec![
            (parse("ising:square:64,beta=0.3")?, 16, 20, "gibbs"),
            (parse("potts:3:square:64,beta=1.0")?, 16, 10, "gibbs"),
            (parse("ising:square:64,beta=0.3")?, 16, 5, "swendsen-wang"),
        ]);
    }
    let n = 65536;
    let graph =
        SpinModel::ising(&format!("random graph n={n} mean degree 4, beta=0.3"), random_graph(n)?, vec![0.0; n], 0.3)?;
    Ok(vec![
        (parse("ising:square:256,beta=0.3")?, 16, 200, "gibbs"),
        (parse("ising:square:256,beta=0.3")?, 16, 200, "metropolis"),
        (parse("ising:square:1024,beta=0.3")?, 4, 50, "gibbs"),
        (graph, 16, 200, "gibbs"),
        (parse("potts:3:square:256,beta=1.0")?, 16, 50, "gibbs"),
        (parse("ising:square:256,beta=0.3")?, 16, 20, "swendsen-wang"),
        (parse("ising:square:1024,beta=0.4406868")?, 4, 10, "swendsen-wang"),
    ])
}

pub(super) fn run(args: &BenchArgs, ctx: Option<&Arc<GpuContext>>, want_cpu: bool) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (model, chains, default_sweeps, sampler) in cases(args.quick)? {
        let sweeps = args.steps.unwrap_or(default_sweeps);
        let init = random_states(SEED, 0, chains, model.sites(), model.q);
        let update = if sampler == "metropolis" { Update::Metropolis } else { Update::Gibbs };
        let cost = if sampler == "swendsen-wang" {
            model_cost::swendsen_wang_site(&model, chains)
        } else {
            let exact = Rules::new(&model, &Layout::new(&model.graph.colouring()), update).exact;
            model_cost::sweep_site(&model, update == Update::Metropolis, exact, chains)
        };
        let mut time = |executor: &'static str, run: &mut dyn FnMut(u32) -> Result<()>| -> Result<()> {
            run(2)?;
            let start = Instant::now();
            run(sweeps)?;
            let row = Row {
                executor,
                cost,
                model: model.name.clone(),
                sites: model.sites(),
                sampler,
                chains,
                sweeps,
                seconds: start.elapsed().as_secs_f64(),
            };
            eprintln!("  {executor:>3}  {} {sampler} {chains} chains: {} site updates/s", row.model, si(row.rate()));
            rows.push(row);
            Ok(())
        };
        if sampler == "swendsen-wang" {
            if let Some(ctx) = ctx {
                let mut g = GpuClusterChains::new(ctx.clone(), &model, Cluster::SwendsenWang, &init, SEED, 0)?;
                time("gpu", &mut |n| Ok(g.run(n)?))?;
            }
            if want_cpu {
                let mut c = ClusterChains::new(&model, Cluster::SwendsenWang, &init, SEED, 0)?;
                time("cpu", &mut |n| {
                    c.run(n);
                    Ok(())
                })?;
            }
            continue;
        }
        if let Some(ctx) = ctx {
            let mut g = GpuSpins::new(ctx.clone(), &model, update, &init, SEED, 0)?;
            time("gpu", &mut |n| Ok(g.run(n)?))?;
        }
        if want_cpu {
            let mut c = CpuSpins::new(&model, update, &init, SEED, 0)?;
            time("cpu", &mut |n| {
                c.run(n);
                Ok(())
            })?;
        }
    }
    Ok(rows)
}

/// The table; GFLOP/s and (GPU rows) GB/s by the roofline model of a site update, and with the
/// device's peaks the fraction of the roofline bound (GPU rows).
pub(super) fn table(rows: &[Row], peaks: Option<Peaks>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<4} {:<44} {:>9} {:<14} {:>7} {:>7} {:>9} {:>15} {:>9} {:>9} {:>8} {:>8}",
        "exec",
        "model",
        "sites",
        "sampler",
        "chains",
        "sweeps",
        "seconds",
        "site updates/s",
        "GFLOP/s",
        "GB/s",
        "% roof",
        "bound"
    );
    for r in rows {
        let [gflops, gbs, fraction, bound] = roof(Some(r.cost), r.rate(), r.executor == "gpu", peaks).cells();
        let _ = writeln!(
            out,
            "{:<4} {:<44} {:>9} {:<14} {:>7} {:>7} {:>9.3} {:>15} {gflops:>9} {gbs:>9} {fraction:>8} {bound:>8}",
            r.executor,
            r.model,
            r.sites,
            r.sampler,
            r.chains,
            r.sweeps,
            r.seconds,
            si(r.rate())
        );
    }
    out
}
