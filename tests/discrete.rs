//! Discrete models: every sampler against exact enumeration, the GPU against the CPU on the
//! same seed, the 2-D Ising lattice against Onsager, Swendsen–Wang's autocorrelation at T_c,
//! Hopfield retrieval below and above capacity, and malformed specs refused.

mod common;

use ebm_gpu::discrete::cluster::{Cluster, ClusterChains};
use ebm_gpu::discrete::cpu::CpuSpins;
use ebm_gpu::discrete::exact::{boltzmann, total_variation, total_variation_floor};
use ebm_gpu::discrete::gpu::GpuSpins;
use ebm_gpu::discrete::observables::{self, measure};
use ebm_gpu::discrete::rules::Update;
use ebm_gpu::discrete::{Graph, SpinModel, random_states, spec};

fn model(s: &str) -> SpinModel {
    spec::parse(s).unwrap().unwrap()
}

/// A small graph with distinct couplings and fields (float rules): 8 sites, 12 edges.
fn weighted_graph(seed: u64) -> SpinModel {
    let mut edges = Vec::new();
    let mut k = seed;
    let mut next = || {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((k >> 33) as f64 / (1u64 << 31) as f64) as f32
    };
    for i in 0..8 {
        edges.push((i, (i + 1) % 8, 0.2 + 0.6 * next()));
    }
    for (i, j) in [(0, 4), (1, 5), (2, 6), (3, 7)] {
        edges.push((i, j, -0.5 + next()));
    }
    let graph = Graph::from_edges(8, &edges, "test graph").unwrap();
    let field = (0..8).map(|_| -0.3 + 0.6 * next()).collect();
    SpinModel::ising("weighted", graph, field, 0.9).unwrap()
}

/// Final states of `chains` independent chains after `sweeps` sweeps of `update` on the CPU.
fn cpu_draws(m: &SpinModel, update: Update, chains: usize, sweeps: u32, seed: u64) -> Vec<u8> {
    let init = random_states(seed, 0, chains, m.sites(), m.q);
    let mut c = CpuSpins::new(m, update, &init, seed, 0).unwrap();
    c.run(sweeps);
    c.states()
}

fn cluster_draws(m: &SpinModel, kind: Cluster, chains: usize, steps: u32, seed: u64) -> Vec<u8> {
    let init = random_states(seed, 0, chains, m.sites(), m.q);
    let mut c = ClusterChains::new(m, kind, &init, seed, 0).unwrap();
    c.run(steps);
    c.states().to_vec()
}

/// The histogram of `draws` is as close to the exact distribution as `chains` exact draws
/// would be: TV below 1.25 x the Monte Carlo floor.
fn check_exact(what: &str, m: &SpinModel, draws: &[u8]) {
    let (p, _) = boltzmann(m).unwrap();
    let n = draws.len() / m.sites();
    let (tv, floor) = (total_variation(draws, m.sites(), m.q, &p), total_variation_floor(&p, n));
    eprintln!("{what}: TV {tv:.4}, Monte Carlo floor {floor:.4} ({n} draws)");
    assert!(tv < 1.25 * floor, "{what}: TV {tv} against a floor of {floor}");
}

#[test]
fn every_sampler_matches_exact_enumeration() {
    let chains = 20_000;
    // Table rules: a 3x3 periodic lattice (not bipartite: three colours) with a field.
    let ising = model("ising:square:3,beta=0.35,h=0.15");
    check_exact("ising gibbs", &ising, &cpu_draws(&ising, Update::Gibbs, chains, 60, 1));
    check_exact("ising metropolis", &ising, &cpu_draws(&ising, Update::Metropolis, chains, 120, 2));
    // Potts on a prism (two triangles joined by rungs: 6 sites, 729 configurations).
    let dir = common::temp_dir("discrete_exact");
    let prism = dir.join("prism.csv");
    std::fs::write(&prism, "# two triangles and their rungs\n0,1\n1,2\n2,0\n3,4\n4,5\n5,3\n0,3\n1,4\n2,5\n").unwrap();
    let potts = model(&format!("potts:3:graph:{},beta=0.7", prism.display()));
    check_exact("potts gibbs", &potts, &cpu_draws(&potts, Update::Gibbs, chains, 60, 3));
    check_exact("potts metropolis", &potts, &cpu_draws(&potts, Update::Metropolis, chains, 120, 4));
    let weighted_prism = dir.join("weighted_prism.csv");
    std::fs::write(
        &weighted_prism,
        "0,1,0.9\n1,2,-0.4\n2,0,0.3\n3,4,1.1\n4,5,0.2\n5,3,-0.7\n0,3,0.5\n1,4,0.8\n2,5,-0.2\n",
    )
    .unwrap();
    let potts_float = model(&format!("potts:3:graph:{},beta=1.2", weighted_prism.display()));
    check_exact("weighted potts gibbs", &potts_float, &cpu_draws(&potts_float, Update::Gibbs, chains, 60, 12));
    check_exact(
        "weighted potts metropolis",
        &potts_float,
        &cpu_draws(&potts_float, Update::Metropolis, chains, 120, 13),
    );
    // Float rules: distinct couplings of both signs and fields.
    let weighted = weighted_graph(5);
    check_exact("weighted gibbs", &weighted, &cpu_draws(&weighted, Update::Gibbs, chains, 60, 6));
    check_exact("weighted metropolis", &weighted, &cpu_draws(&weighted, Update::Metropolis, chains, 120, 7));
    // Cluster updates (ferromagnetic, no field).
    let ferro = model("ising:triangular:3,beta=0.25");
    check_exact("ising swendsen-wang", &ferro, &cluster_draws(&ferro, Cluster::SwendsenWang, chains, 30, 8));
    check_exact("ising wolff", &ferro, &cluster_draws(&ferro, Cluster::Wolff, chains, 60, 9));
    check_exact("potts swendsen-wang", &potts, &cluster_draws(&potts, Cluster::SwendsenWang, chains, 30, 10));
    check_exact("potts wolff", &potts, &cluster_draws(&potts, Cluster::Wolff, chains, 60, 11));
}

/// Two modes of unequal weight (a strongly coupled lattice in a small field): single-site
/// chains from random starts keep the mode their start fell into, so their histogram is wrong;
/// with parallel tempering the temperature-1 replica matches enumeration.
#[test]
fn parallel_tempering_finds_the_modes_weights() {
    use ebm_gpu::discrete::tempering::{Replica, Tempered};
    use ebm_gpu::sampler::Tempering;
    let m = model("ising:square:3,beta=1.0,h=0.1");
    let chains = 10_000;
    let (p, _) = boltzmann(&m).unwrap();
    let floor = total_variation_floor(&p, chains);
    let plain = cpu_draws(&m, Update::Gibbs, chains, 60, 1);
    let tv_plain = total_variation(&plain, m.sites(), 2, &p);
    let init = random_states(1, 0, chains, m.sites(), 2);
    let ladder = Tempering::geometric(4, 6.0, 1);
    let mut t = Tempered::new(&m, &ladder, 1, 0, chains, |mr, seed| {
        Ok(Replica::Cpu(CpuSpins::new(mr, Update::Gibbs, &init, seed, 0)?))
    })
    .unwrap();
    t.run(300).unwrap();
    let tv = total_variation(&t.states().unwrap(), m.sites(), 2, &p);
    eprintln!("TV plain {tv_plain:.4}, tempered {tv:.4}, floor {floor:.4}; swap rates {:?}", t.swap_rates());
    assert!(tv_plain > 3.0 * floor, "plain Gibbs mixed after all: TV {tv_plain}");
    assert!(tv < 1.25 * floor, "tempered TV {tv}, floor {floor}");
}

/// A sampler at the wrong temperature fails the same check (so the check can fail).
#[test]
fn the_exact_check_sees_a_wrong_temperature() {
    let right = model("ising:square:3,beta=0.35,h=0.15");
    let wrong = model("ising:square:3,beta=0.42,h=0.15");
    let (p, _) = boltzmann(&right).unwrap();
    let draws = cpu_draws(&wrong, Update::Gibbs, 20_000, 60, 1);
    let tv = total_variation(&draws, 9, 2, &p);
    assert!(tv > 2.0 * total_variation_floor(&p, 20_000), "TV {tv}");
}

#[test]
fn boltzmann_machine_energy_is_the_units_energy() {
    let dir = common::temp_dir("bm");
    let n = 5;
    let mut w = vec![0.0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = ((i * 7 + j * 3) % 5) as f32 * 0.3 - 0.6;
            w[i * n + j] = v;
            w[j * n + i] = v;
        }
    }
    let b: Vec<f32> = (0..n).map(|i| 0.2 * i as f32 - 0.4).collect();
    let (wf, bf) = (dir.join("w.npy"), dir.join("b.npy"));
    std::fs::write(&wf, ebm_gpu::io::npy::encode_f32(&w, &[n, n])).unwrap();
    std::fs::write(&bf, ebm_gpu::io::npy::encode_f32(&b, &[n])).unwrap();
    let m = model(&format!("bm:{},bias={}", wf.display(), bf.display()));
    for k in 0..32u64 {
        let x = ebm_gpu::discrete::exact::configuration(k, 2, n);
        let mut e = 0.0f64;
        for i in 0..n {
            e -= b[i] as f64 * x[i] as f64;
            for j in i + 1..n {
                e -= w[i * n + j] as f64 * (x[i] * x[j]) as f64;
            }
        }
        assert!((m.energy(&x) - e).abs() < 1e-5, "state {k}: {} vs {e}", m.energy(&x));
    }
    check_exact("boltzmann machine", &m, &cpu_draws(&m, Update::Gibbs, 20_000, 40, 3));
}

/// The CPU's two paths (16 chains per vector for table-driven Ising rules, chain by chain for
/// the rest) compute the same bits: odd chain counts, padded classes, irregular degrees.
#[test]
fn lane_path_equals_chain_by_chain() {
    let dir = common::temp_dir("discrete_lanes");
    let star = dir.join("star.csv");
    std::fs::write(&star, "0,1\n0,2\n0,3\n0,4\n0,5\n1,2\n3,4\n5,6\n6,7\n7,8\n8,9\n9,6\n").unwrap();
    let specs = [
        "ising:square:16,beta=0.44,h=0.02".to_string(),
        "ising:triangular:3x5,beta=0.3,J=-0.7".to_string(),
        format!("ising:graph:{},beta=0.8,h=-0.1", star.display()),
        "ising:cubic:4,beta=0.2".to_string(),
    ];
    for s in &specs {
        let m = model(s);
        for update in [Update::Gibbs, Update::Metropolis] {
            let init = random_states(5, 5, 21, m.sites(), 2);
            let mut fast = CpuSpins::new(&m, update, &init, 9, 5).unwrap();
            let mut slow = CpuSpins::chain_by_chain(&m, update, &init, 9, 5).unwrap();
            fast.run(7);
            slow.run(7);
            assert_eq!(fast.states(), slow.states(), "{s} {update:?}");
            assert_ne!(fast.states(), init, "{s} {update:?}: nothing moved");
        }
    }
}

/// Table rules agree bit for bit; float rules in all but a tie-rate of chains.
#[test]
fn gpu_sweeps_match_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let cases = [
        ("ising:square:16,beta=0.4,h=0.05", Update::Gibbs),
        ("ising:square:16,beta=0.4", Update::Metropolis),
        ("potts:4:triangular:6,beta=0.9", Update::Gibbs),
        ("potts:3:cubic:4,beta=0.5", Update::Metropolis),
    ];
    let chains = 48;
    for (s, update) in cases {
        let m = model(s);
        let init = random_states(3, 0, chains, m.sites(), m.q);
        let mut cpu = CpuSpins::new(&m, update, &init, 11, 0).unwrap();
        let mut gpu = GpuSpins::new(ctx.clone(), &m, update, &init, 11, 0).unwrap();
        cpu.run(25);
        gpu.run(25).unwrap();
        let (a, b) = (cpu.states(), gpu.states().unwrap());
        assert_ne!(a, init, "{s}: chains did not move");
        assert_eq!(a, b, "{s} {update:?}: GPU and CPU differ");
    }
    // Zero temperature (a Hopfield-type model: distinct couplings, sign rule) is exact too;
    // float rules may differ where a uniform falls between two roundings of exp().
    let weighted = weighted_graph(9);
    let mut zero = weighted.clone();
    zero.beta = f32::INFINITY;
    let dir = common::temp_dir("discrete_gpu");
    let file = dir.join("weighted.csv");
    std::fs::write(&file, "0,1,0.9\n1,2,-0.4\n2,0,0.3\n3,4,1.1\n4,5,0.2\n5,3,-0.7\n0,3,0.5\n1,4,0.8\n2,5,-0.2\n")
        .unwrap();
    let potts = model(&format!("potts:4:graph:{},beta=1.2", file.display()));
    let float_cases = [
        (&zero, Update::Gibbs, true),
        (&weighted, Update::Gibbs, false),
        (&weighted, Update::Metropolis, false),
        (&potts, Update::Gibbs, false),
        (&potts, Update::Metropolis, false),
    ];
    for (m, update, exact) in float_cases {
        let chains = 512;
        let init = random_states(4, 0, chains, m.sites(), m.q);
        let mut cpu = CpuSpins::new(m, update, &init, 12, 0).unwrap();
        let mut gpu = GpuSpins::new(ctx.clone(), m, update, &init, 12, 0).unwrap();
        cpu.run(20);
        gpu.run(20).unwrap();
        let (a, b) = (cpu.states(), gpu.states().unwrap());
        let differing = a.chunks(m.sites()).zip(b.chunks(m.sites())).filter(|(x, y)| x != y).count();
        eprintln!("q {} beta {} {update:?}: {differing} of {chains} chains differ", m.q, m.beta);
        if exact {
            assert_eq!(differing, 0);
        } else {
            // About 150 updates per chain, each a tie with probability ~1e-7.
            assert!(differing * 100 <= chains, "{differing} of {chains} chains differ");
        }
    }
}

/// Cluster steps on the GPU give the CPU's states bit for bit (and Wolff's cluster sizes):
/// small and percolating clusters, Ising and Potts, lattices and a weighted graph, over more
/// steps than one submit holds.
#[test]
fn gpu_cluster_steps_match_cpu() {
    use ebm_gpu::discrete::cluster::gpu::GpuClusterChains;
    let Some(ctx) = common::gpu() else { return };
    let dir = common::temp_dir("discrete_gpu_cluster");
    let file = dir.join("ferro.csv");
    std::fs::write(&file, "0,1,0.9\n1,2,0.4\n2,0,0.3\n3,4,1.1\n4,5,0.2\n5,3,0.7\n0,3,0.5\n1,4,0.8\n6,7,0.6\n").unwrap();
    let cases = [
        "ising:square:16,beta=0.4406868".to_string(),
        "ising:square:24,beta=0.7".to_string(),
        "ising:square:12,beta=0.1".to_string(),
        "potts:3:triangular:9,beta=1.1".to_string(),
        "potts:4:cubic:4,beta=0.6".to_string(),
        format!("ising:graph:{},beta=0.8", file.display()),
        format!("potts:5:graph:{},beta=1.5", file.display()),
    ];
    for s in &cases {
        let m = model(s);
        for kind in [Cluster::SwendsenWang, Cluster::Wolff] {
            let chains = 12;
            let init = random_states(5, 0, chains, m.sites(), m.q);
            let mut cpu = ClusterChains::new(&m, kind, &init, 13, 2).unwrap();
            let mut gpu = GpuClusterChains::new(ctx.clone(), &m, kind, &init, 13, 2).unwrap();
            for steps in [3, 70] {
                cpu.run(steps);
                gpu.run(steps).unwrap();
                let (a, b) = (cpu.states(), gpu.states().unwrap());
                assert_ne!(a, init, "{s}: chains did not move");
                assert_eq!(a, &b[..], "{s} {kind:?}: GPU and CPU differ after {steps} more steps");
                assert_eq!(cpu.flipped, gpu.flipped, "{s} {kind:?}: Wolff cluster sizes differ");
            }
        }
    }
}

/// Energy per site and |m| of a 32 x 32 lattice against Onsager's infinite-lattice values,
/// away from T_c (finite-size effects below 1e-3 there), by Gibbs and by Swendsen–Wang.
#[test]
fn square_ising_matches_onsager_away_from_t_c() {
    for beta in [0.3f64, 0.6] {
        let m = model(&format!("ising:square:32,beta={beta}"));
        let chains = 16;
        for method in ["gibbs", "swendsen-wang"] {
            // Below T_c from the ordered state: from noise, single-site chains of a 32 x 32
            // lattice form stripes that outlive any test-sized run.
            let init = if beta > observables::onsager_beta_c() {
                vec![1u8; chains * m.sites()]
            } else {
                random_states(21, 0, chains, m.sites(), 2)
            };
            let mut e = vec![Vec::new(); chains];
            let mut mag = vec![Vec::new(); chains];
            let mut record = |states: &[u8]| {
                for (c, row) in states.chunks(m.sites()).enumerate() {
                    let (ec, mc) = measure(&m, row);
                    e[c].push(ec);
                    mag[c].push(mc);
                }
            };
            if method == "gibbs" {
                let mut s = CpuSpins::new(&m, Update::Gibbs, &init, 22, 0).unwrap();
                s.run(300);
                for _ in 0..600 {
                    s.run(1);
                    record(&s.states());
                }
            } else {
                let mut s = ClusterChains::new(&m, Cluster::SwendsenWang, &init, 22, 0).unwrap();
                s.run(50);
                for _ in 0..400 {
                    s.run(1);
                    record(s.states());
                }
            }
            let t = observables::thermo(beta, m.sites(), &e, &mag).unwrap();
            let (u, mm) = (observables::onsager_energy(beta), observables::onsager_magnetisation(beta));
            eprintln!(
                "beta {beta} {method}: e {:.4} ± {:.4} (Onsager {u:.4}), |m| {:.4} ± {:.4} (Onsager {mm:.4})",
                t.energy_per_site.mean,
                t.energy_per_site.standard_error,
                t.abs_magnetisation.mean,
                t.abs_magnetisation.standard_error
            );
            assert!((t.energy_per_site.mean - u).abs() < 4.0 * t.energy_per_site.standard_error + 1e-3);
            if beta > observables::onsager_beta_c() {
                assert!((t.abs_magnetisation.mean - mm).abs() < 4.0 * t.abs_magnetisation.standard_error + 1e-3);
            } else {
                // Disordered: |m| ~ sqrt(chi / (beta N)), far from order.
                assert!(t.abs_magnetisation.mean < 0.1);
            }
        }
    }
}

/// Above T_c the second-moment correlation length is close to the exact exponential one,
/// 1 / (-ln tanh β - 2β) (Onsager), on a lattice several times longer.
#[test]
fn correlation_length_matches_the_exact_one_above_t_c() {
    // L about 6 ξ: long enough for small finite-size effects, short enough that <M²> / <F>
    // differs from 1 by far more than its noise.
    for (beta, side) in [(0.3f64, 10usize), (0.35, 16), (0.4, 36)] {
        let m = model(&format!("ising:square:{side},beta={beta}"));
        let chains = 32;
        let init = random_states(41, 0, chains, m.sites(), 2);
        let mut s = ClusterChains::new(&m, Cluster::SwendsenWang, &init, 42, 0).unwrap();
        s.run(50);
        let (mut mag, mut f) = (vec![Vec::new(); chains], vec![Vec::new(); chains]);
        for _ in 0..400 {
            s.run(1);
            for (c, row) in s.states().chunks(m.sites()).enumerate() {
                mag[c].push(measure(&m, row).1);
                f[c].push(observables::structure_factor_min(&m, row).unwrap());
            }
        }
        let xi = observables::correlation_length(side, m.sites(), &mag, &f).unwrap();
        let exact = 1.0 / (-(beta.tanh()).ln() - 2.0 * beta);
        eprintln!("beta {beta}, L {side}: second-moment ξ {xi:.3}, exact exponential ξ {exact:.3}");
        assert!((xi / exact - 1.0).abs() < 0.1, "ξ {xi} against {exact}");
    }
}

/// At T_c, Swendsen–Wang decorrelates |m| far faster per sweep than single-site Gibbs.
#[test]
fn swendsen_wang_beats_gibbs_at_t_c() {
    let beta = observables::onsager_beta_c();
    let m = model(&format!("ising:square:32,beta={beta}"));
    let chains = 8;
    let series = |draws: Vec<Vec<f64>>| observables::thermo(beta, m.sites(), &draws, &draws).unwrap();
    let init = random_states(31, 0, chains, m.sites(), 2);
    let mut gibbs = CpuSpins::new(&m, Update::Gibbs, &init, 32, 0).unwrap();
    let mut sw = ClusterChains::new(&m, Cluster::SwendsenWang, &init, 32, 0).unwrap();
    gibbs.run(500);
    sw.run(100);
    let (mut g, mut s) = (vec![Vec::new(); chains], vec![Vec::new(); chains]);
    for _ in 0..1500 {
        gibbs.run(1);
        sw.run(1);
        for (c, row) in gibbs.states().chunks(m.sites()).enumerate() {
            g[c].push(measure(&m, row).1);
        }
        for (c, row) in sw.states().chunks(m.sites()).enumerate() {
            s[c].push(measure(&m, row).1);
        }
    }
    let (tg, ts) = (series(g).abs_magnetisation.autocorrelation_time, series(s).abs_magnetisation.autocorrelation_time);
    eprintln!("autocorrelation time of |m| at T_c, 32x32: gibbs {tg:.1} sweeps, swendsen-wang {ts:.1}");
    assert!(ts * 5.0 < tg, "swendsen-wang {ts}, gibbs {tg}");
}

fn patterns_file(dir: &std::path::Path, p: usize, n: usize, seed: u64) -> (std::path::PathBuf, Vec<Vec<i8>>) {
    let bits = random_states(seed, 0, p, n, 2);
    let rows: Vec<Vec<i8>> = bits.chunks(n).map(|r| r.iter().map(|&b| 2 * b as i8 - 1).collect()).collect();
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let path = dir.join(format!("patterns{p}.npy"));
    std::fs::write(&path, ebm_gpu::io::npy::encode_f32(&flat, &[p, n])).unwrap();
    (path, rows)
}

/// Below capacity (P = 0.05 N) corrupted cues return to their patterns; above (0.3 N) not.
#[test]
fn hopfield_retrieves_below_capacity_and_fails_above() {
    let dir = common::temp_dir("hopfield");
    let n = 200;
    for (p, expect_retrieval) in [(10, true), (60, false)] {
        let (file, rows) = patterns_file(&dir, p, n, 40 + p as u64);
        let m = model(&format!("hopfield:{}", file.display()));
        // Each chain starts from pattern (chain mod P) with 15 % of its units flipped.
        let chains = 2 * p;
        let noise = random_states(7, 0, chains, n, 100);
        let init: Vec<u8> = (0..chains * n)
            .map(|k| {
                let (c, i) = (k / n, k % n);
                let b = (rows[c % p][i] == 1) as u8;
                if noise[k] < 15 { 1 - b } else { b }
            })
            .collect();
        let mut s = CpuSpins::new(&m, Update::Gibbs, &init, 1, 0).unwrap();
        s.run(10);
        let states = s.states();
        let mean_overlap: f64 = (0..chains)
            .map(|c| observables::overlaps(&rows[c % p..c % p + 1], &states[c * n..(c + 1) * n])[0])
            .sum::<f64>()
            / chains as f64;
        eprintln!("P = {p}, N = {n}: mean overlap with the cued pattern after 10 sweeps {mean_overlap:.3}");
        if expect_retrieval {
            assert!(mean_overlap > 0.98, "{mean_overlap}");
        } else {
            assert!(mean_overlap < 0.8, "{mean_overlap}");
        }
    }
}

/// Synchronous zero-temperature updates: two aligned-coupled spins started apart swap forever
/// (a 2-cycle), where asynchronous updates align them; both retrieve stored patterns.
#[test]
fn synchronous_updates_cycle_where_asynchronous_ones_settle() {
    let dir = common::temp_dir("hopfield_sync");
    let pair = dir.join("pair.csv");
    std::fs::write(&pair, "0,1\n").unwrap();
    let m = model(&format!("ising:graph:{},beta=inf", pair.display()));
    let mut sync = CpuSpins::synchronous(&m, &[1, 0]).unwrap();
    sync.run(1);
    assert_eq!(sync.states(), vec![0, 1]);
    sync.run(1);
    assert_eq!(sync.states(), vec![1, 0]);
    let mut asynchronous = CpuSpins::new(&m, Update::Gibbs, &[1, 0], 0, 0).unwrap();
    asynchronous.run(2);
    let s = asynchronous.states();
    assert_eq!(s[0], s[1], "asynchronous updates align the pair: {s:?}");
    let (file, rows) = patterns_file(&dir, 10, 200, 50);
    let hop = model(&format!("hopfield:{}", file.display()));
    let cue: Vec<u8> = rows[3].iter().enumerate().map(|(i, &x)| ((x == 1) as u8) ^ (i % 9 == 0) as u8).collect();
    let mut s = CpuSpins::synchronous(&hop, &cue).unwrap();
    s.run(10);
    assert!(observables::overlaps(&rows[3..4], &s.states())[0] > 0.98);
    assert!(CpuSpins::synchronous(&model("ising:square:4,beta=1"), &[0; 16]).is_err());
}

#[test]
fn malformed_discrete_specs_are_refused_naming_the_part() {
    let dir = common::temp_dir("discrete_specs");
    let err = |s: &str| spec::parse(s).unwrap_err().to_string();
    assert!(err("potts:1:square:8").contains("q = 1"));
    assert!(err("potts:x:square:8").contains("not a whole number"));
    assert!(err("ising:hexagonal:8").contains("unknown lattice"));
    assert!(err("ising:square:2").contains("below 3"));
    assert!(err("ising:square:8,beta=0.4,beta=0.5").contains("twice"));
    assert!(err("ising:square:8,temp=2").contains("unknown option"));
    assert!(err("ising:square:8,beta=-1").contains("beta"));
    assert!(err("ising:square:8,J=nan").contains("J=nan"));
    let graph = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    assert!(err(&format!("ising:graph:{}", graph("loop.csv", "0,1\n2,2\n"))).contains("self-loop"));
    assert!(err(&format!("ising:graph:{},n=3", graph("range.csv", "0,1\n1,5\n"))).contains("out of range"));
    assert!(err(&format!("ising:graph:{}", graph("text.csv", "0,1\n1,x\n"))).contains("line 2"));
    assert!(err(&format!("ising:graph:{}", graph("empty.csv", "# nothing\n"))).contains("no edges"));
    let bad = dir.join("bad.npy");
    std::fs::write(&bad, ebm_gpu::io::npy::encode_f32(&[1.0, 0.5, -1.0, 1.0], &[2, 2])).unwrap();
    assert!(err(&format!("hopfield:{}", bad.display())).contains("pattern 0, unit 1"));
    let rect = dir.join("rect.npy");
    std::fs::write(&rect, ebm_gpu::io::npy::encode_f32(&[0.0; 6], &[2, 3])).unwrap();
    assert!(err(&format!("bm:{}", rect.display())).contains("square"));
    assert!(spec::parse("ring8").unwrap().is_none());
    // Cluster updates refuse models they would sample wrongly.
    let frustrated = weighted_graph(1);
    let init = random_states(0, 0, 1, 8, 2);
    let e = ClusterChains::new(&frustrated, Cluster::Wolff, &init, 0, 0).err().unwrap().to_string();
    assert!(e.contains("cluster updates need"), "{e}");
}
