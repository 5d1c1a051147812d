//! AIS for continuous energies (src/ais/): log Z against known answers (Gaussians in closed
//! form, on R^d and truncated to a box; a 2-D network by quadrature), forward below and
//! reverse above on a mixture with separated modes, shards that join into one run set, and
//! the GPU's weights equal to the CPU's.

mod common;

use ebm_gpu::ais::anneal::{self, AnnealConfig};
use ebm_gpu::ais::base::{Base, BaseKind, normal_cdf};
use ebm_gpu::energy::batch::{CpuEvaluator, Evaluator, GpuEvaluator};
use ebm_gpu::energy::{Energy, GaussianDiag, log_z, spec};
use ebm_gpu::nn::{Architecture, Network};
use ebm_gpu::rng::{self, Stream};

/// Forward AIS from `base`, its pilot included.
fn forward(energy: &Energy, base: &Base, config: &AnnealConfig) -> anneal::Estimate {
    let mut eval = CpuEvaluator(energy);
    let steps = anneal::adapt(&mut eval, base, config).unwrap();
    anneal::forward(&mut eval, base, config, &steps).unwrap()
}

fn gaussian(mean: Vec<f32>, std: Vec<f32>) -> Energy {
    GaussianDiag { mean, inv_var: std.iter().map(|s| 1.0 / (s * s)).collect() }.into()
}

/// Within 3 standard errors and `nats` of the truth.
fn assert_close(what: &str, e: &anneal::Estimate, truth: f64, nats: f64) {
    let r = &e.result;
    let off = (r.log_z - truth).abs();
    assert!(
        off <= 3.0 * r.std_err + 1e-9 && off <= nats,
        "{what}: AIS log Z {:.4} +- {:.4} vs {truth:.4} (off by {off:.4}; acceptance {:.2})",
        r.log_z,
        r.std_err,
        e.acceptance
    );
}

/// Gaussians whose mean is far from the base N(0, I), isotropic and anisotropic, at d = 2,
/// 64 and 784: log Z within 3 standard errors and 0.5 nats of the closed form.
#[test]
fn gaussian_log_z_matches_the_closed_form_up_to_784_dimensions() {
    // (d, temperatures, isotropic mean and std): the variance of the log weights grows with
    // d times the distance from the base, so the far mean of d = 2 and 64 is nearer at 784
    // (still 28 base standard deviations away).
    for (d, temperatures, (m, s)) in
        [(2usize, 300usize, (2.0f32, 0.5f32)), (64, 1500, (2.0, 0.5)), (784, 5000, (1.0, 0.8))]
    {
        let cases = [
            ("isotropic", gaussian(vec![m; d], vec![s; d])),
            (
                "anisotropic",
                gaussian(
                    (0..d).map(|i| (i % 3) as f32 - 1.0).collect(),
                    (0..d).map(|i| 0.5 + 0.1 * (i % 7) as f32).collect(),
                ),
            ),
        ];
        for (name, energy) in cases {
            let (truth, _) = log_z::closed_form(&energy).unwrap();
            let base = Base::new(BaseKind::Isotropic(1.0), d, None, None).unwrap();
            let e = forward(&energy, &base, &AnnealConfig::new(48, temperatures, 11));
            assert_close(&format!("{name} d={d}"), &e, truth, 0.5);
            assert_eq!(e.dropped, 0);
        }
    }
}

/// A Gaussian restricted to the box [-1, 1]^16, from the uniform base and from a base fitted
/// to data (a truncated Gaussian): the reflected HMC samples the box's density, and log Z
/// matches the product of the coordinates' truncated masses.
#[test]
fn a_density_on_a_box_anneals_from_the_uniform_and_a_fitted_base() {
    let d = 16;
    let (mean, std): (Vec<f32>, Vec<f32>) = (0..d).map(|i| (-1.2 + 0.15 * i as f32, 0.4 + 0.05 * i as f32)).unzip();
    let energy = gaussian(mean.clone(), std.clone());
    let truth: f64 = mean
        .iter()
        .zip(&std)
        .map(|(&m, &s)| {
            let (m, s) = (m as f64, s as f64);
            (s * (2.0 * std::f64::consts::PI).sqrt() * (normal_cdf((1.0 - m) / s) - normal_cdf((-1.0 - m) / s))).ln()
        })
        .sum();
    // Data for the fitted base: uniform points (the base need not be near the model).
    let mut data = vec![0.0f32; 200 * d];
    data.chunks_mut(d).enumerate().for_each(|(r, row)| {
        rng::fill_uniforms(5, r as u32, 0, Stream::Init, row);
        row.iter_mut().for_each(|v| *v = 2.0 * *v - 1.0);
    });
    for kind in [BaseKind::Uniform, BaseKind::Fitted] {
        let base = Base::new(kind, d, Some((-1.0, 1.0)), Some(&data)).unwrap();
        let e = forward(&energy, &base, &AnnealConfig::new(32, 300, 4));
        assert_close(&format!("box, {} base", base.label()), &e, truth, 0.3);
    }
}

/// Two separated modes in 10-d (a normalised mixture, log Z = 0): forward AIS lands below
/// (or at) 0 and reverse AIS from exact samples above (or at) it, each within 1 nat.
#[test]
fn forward_is_below_and_reverse_from_exact_samples_above_on_a_mixture() {
    let d = 10;
    let centre = |sign: f64| vec![sign * 2.5; d];
    let json = serde_json::json!({
        "type": "gaussian_mixture", "weights": [0.3, 0.7],
        "means": [centre(-1.0), centre(1.0)], "stds": [vec![0.6; d], vec![0.8; d]],
    });
    let energy = spec::resolve_energy(&json.to_string()).unwrap();
    let base = Base::new(BaseKind::Isotropic(3.0), d, None, None).unwrap();
    let config = AnnealConfig::new(64, 500, 21);
    let mut eval = CpuEvaluator(&energy);
    let steps = anneal::adapt(&mut eval, &base, &config).unwrap();
    let fwd = anneal::forward(&mut eval, &base, &config, &steps).unwrap();
    // Exact samples: a component by its weight, then its Gaussian.
    let mut samples = vec![0.0f32; config.runs * d];
    for (r, row) in samples.chunks_mut(d).enumerate() {
        let pick = rng::uniform4(99, r as u32, 0, Stream::Init, 0)[0] < 0.3;
        rng::fill_normals(99, r as u32, 1, Stream::Init, row);
        let (m, s) = if pick { (-2.5, 0.6) } else { (2.5, 0.8) };
        row.iter_mut().for_each(|v| *v = m + s * *v);
    }
    let rev = anneal::reverse(&mut eval, &base, &config, &steps, &samples).unwrap();
    let (f, r) = (fwd.result.log_z, rev.result.log_z);
    assert!(f <= 3.0 * fwd.result.std_err && f > -1.0, "forward {f:.4} +- {:.4}", fwd.result.std_err);
    assert!(r >= -3.0 * rev.result.std_err && r < 1.0, "reverse {r:.4} +- {:.4}", rev.result.std_err);
}

/// A 2-D network energy (plus a weak Gaussian, so it is normalisable): AIS within 0.05 nats of
/// the quadrature.
#[test]
fn a_network_energy_matches_quadrature_in_2d() {
    let net = Network::random(&Architecture::parse("2/32/tanh/32/tanh/1/head:f").unwrap(), 7).unwrap();
    let energy =
        Energy::Sum { terms: vec![(1.0, Energy::from_network(net)), (1.0, gaussian(vec![0.5, -0.5], vec![1.5, 1.0]))] };
    let quad = ebm_gpu::train::eval::grid_log_z(&energy, [-9.0, -9.0], [9.0, 9.0]).unwrap();
    let base = Base::new(BaseKind::Isotropic(2.0), 2, None, None).unwrap();
    let e = forward(&energy, &base, &AnnealConfig::new(256, 400, 3));
    assert_close("2-d network", &e, quad.log_z, 0.05);
}

/// Runs split into shards by index give the same weights as the whole set (the pilot's step
/// sizes depend on the seed only).
#[test]
fn shards_join_into_the_whole_run_set() {
    let energy = gaussian(vec![1.0; 6], vec![0.7; 6]);
    let base = Base::new(BaseKind::Isotropic(1.0), 6, None, None).unwrap();
    let whole = AnnealConfig::new(8, 100, 5);
    let mut eval = CpuEvaluator(&energy);
    let steps = anneal::adapt(&mut eval, &base, &whole).unwrap();
    let all = anneal::forward(&mut eval, &base, &whole, &steps).unwrap().result.log_weights;
    let mut joined = Vec::new();
    for (first_run, runs) in [(0u32, 3usize), (3, 5)] {
        let shard = AnnealConfig { runs, first_run, ..whole.clone() };
        assert_eq!(anneal::adapt(&mut eval, &base, &shard).unwrap(), steps, "the pilot depends on the shard");
        joined.extend(anneal::forward(&mut eval, &base, &shard, &steps).unwrap().result.log_weights);
    }
    assert_eq!(all, joined);
}

/// The GPU evaluates the energies, the rest is shared: the weights of every run agree with
/// the CPU's to rounding, for an analytic energy and a network.
#[test]
fn gpu_weights_equal_cpu_weights() {
    let Some(ctx) = common::gpu() else { return };
    let net = Network::random(&Architecture::parse("4/16/silu/1/head:f").unwrap(), 2).unwrap();
    let energies = [
        gaussian(vec![0.5, -1.0, 2.0, 0.0], vec![0.5, 1.0, 0.8, 1.2]),
        Energy::Sum { terms: vec![(1.0, Energy::from_network(net)), (1.0, gaussian(vec![0.0; 4], vec![1.0; 4]))] },
    ];
    for energy in &energies {
        let base = Base::new(BaseKind::Isotropic(1.0), 4, None, None).unwrap();
        let config = AnnealConfig::new(16, 100, 8);
        let mut cpu = CpuEvaluator(energy);
        let mut gpu = GpuEvaluator { ctx: ctx.clone(), energy };
        let steps = anneal::adapt(&mut cpu, &base, &config).unwrap();
        let on = |eval: &mut dyn Evaluator| anneal::forward(eval, &base, &config, &steps).unwrap().result.log_weights;
        let (c, g) = (on(&mut cpu), on(&mut gpu));
        for (r, (a, b)) in c.iter().zip(&g).enumerate() {
            assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{} run {r}: cpu {a} gpu {b}", energy.kind());
        }
    }
}

/// Bad settings are refused naming them.
#[test]
fn bad_settings_are_refused() {
    let energy = gaussian(vec![0.0; 2], vec![1.0; 2]);
    let base = Base::new(BaseKind::Isotropic(1.0), 2, None, None).unwrap();
    let mut eval = CpuEvaluator(&energy);
    let few = AnnealConfig::new(8, 10, 1);
    assert!(anneal::adapt(&mut eval, &base, &few).unwrap_err().to_string().contains("temperatures"));
    let config = AnnealConfig::new(4, 100, 1);
    let plan = anneal::adapt(&mut eval, &base, &config).unwrap();
    let one = AnnealConfig::new(1, 100, 1);
    assert!(anneal::forward(&mut eval, &base, &one, &plan).unwrap_err().to_string().contains("runs"));
    let err = anneal::reverse(&mut eval, &base, &config, &plan, &[0.0; 3]).unwrap_err().to_string();
    assert!(err.contains("start states"), "{err}");
    let other = AnnealConfig::new(4, 200, 1);
    let err = anneal::forward(&mut eval, &base, &other, &plan).unwrap_err().to_string();
    assert!(err.contains("another schedule"), "{err}");
}
