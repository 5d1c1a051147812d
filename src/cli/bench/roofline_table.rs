//! The roofline columns of the bench tables, and `ebm bench --roofline-only`: every workload of
//! the chosen suites with its FLOPs, bytes and intensity per unit and, given a device's peaks,
//! its bound on that device, without running anything (docs/roofline.md quotes it for an H100).

use anyhow::Result;

use super::roofline::{self, Cost, Limit, Peaks, SamplerRun};
use super::{BenchArgs, SEED, Suite, nn, si, train};
use crate::nn::{Architecture, Network};
use crate::sampler::{MlpStrategy, SamplerConfig, SamplerKind};

/// A row's roofline figures at `rate` units per second: achieved GFLOP/s (every row), GB/s
/// (GPU rows: the bytes model describes the GPU kernels) and, with the peaks, the fraction of
/// the bound and which roof applies (GPU rows).
#[derive(Default)]
pub(super) struct Roof {
    gpu: bool,
    pub gflops: Option<f64>,
    gbs: Option<f64>,
    fraction: Option<f64>,
    limit: Option<Limit>,
}

pub(super) fn roof(cost: Option<Cost>, rate: f64, gpu: bool, peaks: Option<Peaks>) -> Roof {
    let Some(c) = cost else { return Roof::default() };
    let bound = peaks.filter(|_| gpu).map(|p| c.bound(&p));
    Roof {
        gpu,
        gflops: Some(c.flops * rate / 1e9),
        gbs: gpu.then(|| c.bytes * rate / 1e9),
        fraction: bound.map(|b| rate / b.rate),
        limit: bound.map(|b| b.limit),
    }
}

/// Three significant digits (0.00123, 0.0456, 7.89, 12.3, 456, 7890).
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2.0 - x.abs().log10().floor()).clamp(0.0, 9.0) as usize;
    format!("{x:.digits$}")
}

/// A percentage to three significant digits.
fn percent(x: f64) -> String {
    format!("{}%", sig(100.0 * x))
}

impl Roof {
    /// GFLOP/s, GB/s, % roof, bound.
    pub(super) fn cells(&self) -> [String; 4] {
        let dash = || "-".to_string();
        [
            self.gflops.map_or_else(dash, sig),
            self.gbs.map_or_else(dash, sig),
            self.fraction.map_or_else(dash, percent),
            self.limit.map_or_else(dash, |l| l.name().to_string()),
        ]
    }

    /// The values of [`CSV_COLUMNS`] (bytes only for GPU rows).
    pub(super) fn csv(&self, cost: Option<Cost>) -> String {
        let opt = |v: Option<f64>| v.map_or_else(String::new, |d| d.to_string());
        format!(
            "{},{},{},{},{},{}",
            opt(self.gbs),
            opt(cost.map(|c| c.flops)),
            opt(cost.map(|c| c.rng)),
            opt(cost.filter(|_| self.gpu).map(|c| c.bytes)),
            opt(self.fraction),
            self.limit.map_or("", Limit::name)
        )
    }
}

/// Columns the CSV files add after their own: the roofline model's figures per unit (a
/// chain-step, training point, kernel call or sampler step of all chains, as the row counts).
pub(super) const CSV_COLUMNS: &str =
    "gbytes_per_s,flops_per_unit,rng_flops_per_unit,bytes_per_unit,roof_fraction,bound";

struct Line {
    suite: &'static str,
    workload: String,
    size: String,
    unit: &'static str,
    cost: Cost,
}

/// Sampler rows: every case, sampler and chain count, with the steps per dispatch the GPU
/// sampler picks on a hardware adapter.
fn sampler_lines(args: &BenchArgs, lines: &mut Vec<Line>) -> Result<()> {
    for case in super::cases(args.suite, args.quick)? {
        let suite = if case.suite == Suite::Torchebm {
            "torchebm"
        } else if case.suite == Suite::Mlp {
            "mlp"
        } else {
            "langevin"
        };
        for &kind in &case.samplers {
            let leapfrog = SamplerConfig::new(kind, case.step_size, SEED).leapfrog;
            for &(chains, _) in &case.sizes {
                let spd = roofline::default_steps_per_dispatch(&case.energy, kind, chains, leapfrog);
                let run = SamplerRun { kind, chains, steps_per_dispatch: spd, leapfrog, traced: case.ess };
                if let Some(cost) = roofline::sampler_step(&case.energy, &run) {
                    let tiled = roofline::tiled_mlp(&case.energy).is_some();
                    let mut size =
                        format!("{chains} chains, {spd} steps/dispatch{}", if tiled { ", tiled" } else { "" });
                    if case.ess {
                        size += ", traced";
                    }
                    lines.push(Line {
                        suite,
                        workload: format!("{} {}", case.name, kind.name().to_uppercase()),
                        size,
                        unit: "chain-step",
                        cost,
                    });
                }
            }
        }
    }
    Ok(())
}

fn rbm_lines(args: &BenchArgs, lines: &mut Vec<Line>) {
    let (v, h) = train::RBM;
    let chains = train::rbm_chains(args.quick);
    let name = format!("rbm{v}x{h}");
    lines.push(Line {
        suite: "rbm",
        workload: format!("{name} gibbs"),
        size: format!("{chains} chains"),
        unit: "chain-step",
        cost: roofline::rbm_gibbs(v, h, chains),
    });
    for k in [1, 25] {
        lines.push(Line {
            suite: "rbm",
            workload: format!("{name} cd{k}"),
            size: format!("batch {} (an epoch: 600 steps)", train::RBM_BATCH),
            unit: "step",
            cost: roofline::rbm_cd_batch(v, h, train::RBM_BATCH, k),
        });
    }
}

fn train_lines(args: &BenchArgs, lines: &mut Vec<Line>) -> Result<()> {
    let data = train::TrainData::new();
    for case in train::train_cases(args.quick, &data) {
        for &(loss, name) in &case.losses {
            let (config, state) = train::build(&case, loss)?;
            for &strategy in train::strategies(case.width, loss) {
                let tiled = strategy == MlpStrategy::Tiled;
                let path = if case.width == 0 || loss.is_score_matching() {
                    ", layer kernels"
                } else if tiled {
                    ", tiled"
                } else {
                    ""
                };
                lines.push(Line {
                    suite: "train",
                    workload: format!("{} {name}", case.label),
                    size: format!("batch {}{path}", config.batch),
                    unit: "step",
                    cost: train::step_cost(&config, &state, tiled),
                });
            }
        }
    }
    Ok(())
}

fn nn_lines(args: &BenchArgs, lines: &mut Vec<Line>) -> Result<()> {
    let s = nn::sizes(args.quick);
    for &(n, inputs, outputs) in &s.gemms {
        lines.push(Line {
            suite: "nn",
            workload: "linear fwd".into(),
            size: format!("{n}x{inputs} -> {outputs}"),
            unit: "call",
            cost: roofline::linear_forward(n, inputs, outputs),
        });
    }
    let net = Network::random(&Architecture::parse(nn::UVA_SPEC)?, SEED)?;
    for (k, (name, g)) in nn::uva_convs(&net, s.conv_batch).into_iter().enumerate() {
        let size = format!("conv{} {name}, {} images", k + 1, g.batch);
        let (fwd, bwd) = (roofline::conv_forward(&g), roofline::conv_input_grad(&g));
        lines.push(Line { suite: "nn", workload: "conv fwd".into(), size: size.clone(), unit: "call", cost: fwd });
        lines.push(Line { suite: "nn", workload: "conv in-grad".into(), size, unit: "call", cost: bwd });
    }
    for kind in [SamplerKind::Ula, SamplerKind::Mala] {
        for &chains in &s.chains {
            lines.push(Line {
                suite: "nn",
                workload: format!("uva-convebm {}", kind.name().to_uppercase()),
                size: format!("{chains} chains, layer kernels"),
                unit: "chain-step",
                cost: roofline::layered_step(&net, kind, chains),
            });
        }
    }
    Ok(())
}

/// `ebm bench --roofline-only`: the model of every workload of `--suite`, and its bound on the
/// device of `--peak-tflops` and `--peak-gbs` when given.
pub(super) fn print(args: &BenchArgs) -> Result<()> {
    let peaks = args.peaks();
    let mut lines = Vec::new();
    let wants = |s: Suite| args.suite == Suite::All || args.suite == s;
    if ![Suite::Rbm, Suite::Train, Suite::Nn, Suite::Discrete].contains(&args.suite) {
        sampler_lines(args, &mut lines)?;
    }
    if wants(Suite::Rbm) {
        rbm_lines(args, &mut lines);
    }
    if wants(Suite::Train) {
        train_lines(args, &mut lines)?;
    }
    if wants(Suite::Nn) {
        nn_lines(args, &mut lines)?;
    }
    match peaks {
        Some(p) => println!(
            "roofline model (docs/roofline.md) on a device of {} FLOP/s FP32 and {}B/s: ridge {:.1} FLOP/byte",
            si(p.flops),
            si(p.bytes),
            p.flops / p.bytes
        ),
        None => {
            println!("roofline model (docs/roofline.md); give --peak-tflops and --peak-gbs for each workload's bound")
        }
    }
    if wants(Suite::Discrete) {
        println!(
            "discrete: no roofline model yet (integer site updates: neighbour loads, a table lookup and a quarter of a Philox block per site)"
        );
    }
    const HEADERS: [&str; 11] = [
        "suite",
        "workload",
        "size",
        "unit",
        "FLOP/unit",
        "RNG",
        "bytes/unit",
        "FLOP/byte",
        "bound units/s",
        "bound GFLOP/s",
        "limit",
    ];
    let cells: Vec<[String; 11]> = lines
        .iter()
        .map(|l| {
            let c = l.cost;
            let bound = peaks.map(|p| c.bound(&p));
            let dash = || "-".to_string();
            [
                l.suite.to_string(),
                l.workload.clone(),
                l.size.clone(),
                l.unit.to_string(),
                si(c.flops),
                if c.rng > 0.0 { percent(c.rng / c.flops) } else { "0".into() },
                si(c.bytes),
                format!("{:.1}", c.intensity()),
                bound.map_or_else(dash, |b| si(b.rate)),
                bound.map_or_else(dash, |b| format!("{:.0}", b.rate * c.flops / 1e9)),
                bound.map_or_else(dash, |b| b.limit.name().to_string()),
            ]
        })
        .collect();
    print!("{}", super::align_table(HEADERS, &cells, &[0, 1, 2, 3, 10]));
    Ok(())
}
