//! `ebm rbm sample`: Gibbs chains of a trained RBM, written as a PNG grid or a .npy array.

use super::*;

pub(super) fn run_sample(a: &SampleArgs) -> anyhow::Result<()> {
    let ckpt = run_checkpoint(&a.run_dir)?;
    let out = a.out.clone().unwrap_or_else(|| a.run_dir.join("samples.png"));
    let mut paths = crate::cli::outputs::Paths::new();
    paths
        .input("--run-dir", &ckpt)
        .input("--run-dir", &a.run_dir.join(RUN_FILE))
        .input("--run-dir", &a.run_dir.join(METRICS));
    paths.output("--out", &out, &["png", "npy"])?;
    let (state, _) = checkpoint::load(&ckpt)?;
    let rbm = state.rbm;
    let shape = match a.height {
        Some(h) if h > 0 && rbm.n_vis % h == 0 => (1, h, rbm.n_vis / h),
        Some(h) => bail!("--height {h} does not divide the {} visible units", rbm.n_vis),
        None => crate::io::figure::image_shape(rbm.n_vis),
    };
    if a.chains == 0 {
        bail!("--chains must be at least 1");
    }
    let cols = (a.chains as f64).sqrt().ceil() as usize;
    let title = format!("{} Gibbs chains after {} steps: E[v | h]", a.chains, a.steps);
    let grid = ImageGrid::new(title, shape).cols(cols);
    grid.size(a.chains).with_context(|| format!("--chains {}: the --out grid", a.chains))?;
    // Initial and current visibles, hidden units, the read-back means: refused before allocating.
    let units = [a.chains as u64, (rbm.n_vis + rbm.n_hid) as u64];
    crate::plan::Plan::new()
        .add(format!("--chains {}", a.chains), "the chains' visible and hidden units", &units, 4, 4)
        .check()?;
    let flags = format!("--chains {} x --steps {}", a.chains, a.steps);
    let what = format!("Gibbs sampling this {}x{} RBM", rbm.n_vis, rbm.n_hid);
    crate::plan::Work::new()
        .add(flags, what, &[a.chains as u64, a.steps as u64, 2, rbm.n_vis as u64, rbm.n_hid as u64])
        .check()?;
    // Chains start from Bernoulli(1/2) noise (Init stream).
    let init: Vec<f32> = crate::rng::initial_states(a.seed, 0, a.chains, rbm.n_vis, 1.0)
        .iter()
        .map(|&z| (z > 0.0) as u32 as f32)
        .collect();
    let exec = executor(a.backend)?;
    let means = match &exec {
        Executor::Cpu => {
            let mut g = cpu::CpuGibbs::new(&rbm, &init, a.seed, 0)?;
            g.run(a.steps);
            g.pv
        }
        Executor::Gpu(ctx) => {
            let mut g = gpu::GpuGibbs::new(ctx.clone(), &rbm, &init, a.seed, 0)?;
            g.run(a.steps)?;
            g.read()?.3
        }
    };
    // As the --out check reads it: x.NPY is an .npy file, not a PNG under that name.
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        crate::io::npy::write_f32(&out, &means, &[a.chains, rbm.n_vis])?;
    } else {
        let scale = if rbm.visible == Visible::Gaussian { Scale::Symmetric } else { Scale::Unit };
        grid.scale(scale).png(&out, &means)?;
    }
    println!(
        "wrote {} ({} chains, {} Gibbs steps, {}; pixels are E[v | h])",
        out.display(),
        a.chains,
        a.steps,
        exec.describe()
    );
    Ok(())
}
