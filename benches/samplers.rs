//! Criterion benches: Langevin samplers and training steps on the GPU and CPU executors in one run.
//!
//! Groups `ula` and `mala`; in each, ring8 (2-d) and a 10-d diagonal Gaussian with 4096 chains,
//! one iteration = `run(20)` (the GPU `run` returns once the device is done). Throughput is in
//! chain-steps. Samplers are built and warmed up outside the measured loop, so pipeline creation
//! is never timed. Without a GPU adapter the GPU benches are skipped with a note.
//!
//! Group `train`: training steps of a small MLP energy on both executors.
//!
//! Group `nn`: the layer kernels, one GEMM (Linear 256 -> 64 at 1024 rows, bias epilogue) and
//! one convolution (the UvA ConvEBM's 16 -> 32 k3 s2 p1 layer on 16x16 at 64 images, forward
//! plus input gradient), GPU (`NnKernels`, one submit waited for per iteration) and CPU
//! (`nn::ops`, single-threaded); throughput in FLOPs.
//!
//! `cargo bench --bench samplers` (filter with e.g. `-- mala/gpu` or `-- train`). A software adapter
//! (llvmpipe/lavapipe) gives numbers that say nothing about a real GPU.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ebm_gpu::energy::{Energy, spec::resolve_energy};
use ebm_gpu::gpu::{ContextInternals, GpuContext};
use ebm_gpu::rng;
use ebm_gpu::sampler::cpu::CpuSampler;
use ebm_gpu::sampler::gpu::GpuSampler;
use ebm_gpu::sampler::{ChainSampler, SamplerConfig, SamplerKind};

const CHAINS: usize = 4096;
const STEPS: u32 = 20;
const SEED: u64 = 7;

/// (name, energy, step size)
fn energies() -> Vec<(&'static str, Energy, f32)> {
    let d = 10;
    let gaussian = serde_json::json!({
        "type": "gaussian",
        "mean": (0..d).map(|i| 0.5 * i as f64 - 2.0).collect::<Vec<_>>(),
        "std": (0..d).map(|i| 0.5 + 0.15 * i as f64).collect::<Vec<_>>(),
    });
    vec![
        ("ring8", resolve_energy("ring8").expect("ring8 preset"), 0.01),
        ("gaussian10", resolve_energy(&gaussian.to_string()).expect("10-d Gaussian spec"), 0.05),
    ]
}

fn gpu_context() -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("gpu: {}", ctx.describe());
            if ctx.adapter_info().is_some_and(|i| i.device_type == ebm_gpu::wgpu::DeviceType::Cpu) {
                eprintln!("note: software adapter: the GPU timings say nothing about a real GPU");
            }
            Some(Arc::new(ctx))
        }
        Err(e) => {
            eprintln!("note: no GPU adapter ({e}); skipping the GPU benchmarks");
            None
        }
    }
}

fn bench_samplers(c: &mut Criterion) {
    let ctx = gpu_context();
    eprintln!("cpu: {} rayon threads", rayon::current_num_threads());
    let energies = energies();
    for (group_name, kind) in [("ula", SamplerKind::Ula), ("mala", SamplerKind::Mala)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(CHAINS as u64 * STEPS as u64));
        for (name, energy, step_size) in &energies {
            let init = rng::initial_states(SEED, 0, CHAINS, energy.dim(), 1.0);
            let config = SamplerConfig::new(kind, *step_size, SEED);
            let mut samplers: Vec<(&str, Box<dyn ChainSampler>)> = Vec::new();
            if let Some(ctx) = &ctx {
                let s = GpuSampler::new(ctx.clone(), energy, config.clone(), &init).expect("GPU sampler");
                samplers.push(("gpu", Box::new(s)));
            }
            samplers.push(("cpu", Box::new(CpuSampler::new(energy, config, &init).expect("CPU sampler"))));
            for (executor, mut sampler) in samplers {
                // First run outside the measurement: shader JIT, first-touch allocations.
                sampler.run(STEPS).expect("warm-up run");
                group.bench_function(BenchmarkId::new(format!("{executor}/{name}"), CHAINS), |b| {
                    b.iter(|| sampler.run(black_box(STEPS)).expect("sampler run"))
                });
            }
        }
        group.finish();
    }
}

/// Group `train`: one iteration = 4 training steps of a 2x64 SiLU MLP on ring8 (batch 256, CD
/// with 20 Langevin steps from the replay buffer), on each executor; throughput in steps.
fn bench_training(c: &mut Criterion) {
    use ebm_gpu::train::{Loss, ModelSpec, TrainConfig, TrainState, Trainer, cpu::CpuTrainer, gpu::GpuTrainer};
    const TRAIN_STEPS: u32 = 4;
    let ctx = gpu_context();
    let data = ebm_gpu::data::toy::Toy::Ring8.sample(20_000, SEED);
    let config = TrainConfig::for_data(Loss::Cd, &data, 2, SEED).expect("training config");
    let mlp = ModelSpec::parse("mlp:2,64,64,1:silu").and_then(|m| m.build(SEED)).expect("network");
    let state = TrainState::new(mlp, &config).expect("training state");
    let mut group = c.benchmark_group("train");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(TRAIN_STEPS as u64));
    let mut trainers: Vec<(&str, Box<dyn Trainer>)> = Vec::new();
    if let Some(ctx) = &ctx {
        trainers
            .push(("gpu", Box::new(GpuTrainer::new(ctx.clone(), &config, state.clone(), &data).expect("GPU trainer"))));
    }
    trainers.push(("cpu", Box::new(CpuTrainer::new(&config, state, &data).expect("CPU trainer"))));
    for (executor, mut trainer) in trainers {
        trainer.run(1).expect("warm-up step");
        group.bench_function(BenchmarkId::new(format!("{executor}/cd-2x64"), config.batch), |b| {
            b.iter(|| trainer.run(black_box(TRAIN_STEPS)).expect("training steps"))
        });
    }
    group.finish();
}

/// Group `nn`: one GEMM and one convolution (forward + input gradient) on each executor.
fn bench_nn(c: &mut Criterion) {
    use ebm_gpu::nn::gpu::{Epilogue, NnKernels, Slice};
    use ebm_gpu::nn::ops::{self, ConvGeom};
    let ctx = gpu_context();
    let randn = |stream: u32, len: usize| rng::initial_states(SEED, stream, 1, len, 1.0);
    let (n, inputs, outputs) = (1024, 256, 64);
    let g = ConvGeom { batch: 64, in_c: 16, in_h: 16, in_w: 16, out_c: 32, kh: 3, kw: 3, stride: 2, pad: 1 };
    let (x, w, b) = (randn(1, n * inputs), randn(2, outputs * inputs), randn(3, outputs));
    let (cx, cw, cb, cdy) = (
        randn(4, g.batch * g.in_len()),
        randn(5, g.out_c * g.patch()),
        randn(6, g.out_c),
        randn(7, g.batch * g.out_len()),
    );
    let gemm_flops = 2 * (n * inputs * outputs) as u64;
    let conv_flops = 4 * g.batch as u64 * g.macs();
    let mut group = c.benchmark_group("nn");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    if let Some(ctx) = &ctx {
        let nn = NnKernels::new(ctx.clone());
        let buf = |v: &[f32]| ctx.storage_buffer("bench", bytemuck::cast_slice(v));
        let (xb, wb, bb) = (buf(&x), buf(&w), buf(&b));
        let yb = ctx.zeroed_storage_buffer("bench y", (n * outputs * 4) as u64);
        let epi = |bias| Epilogue { bias: Some(Slice::whole(bias)), ..Default::default() };
        let linear = nn
            .linear_forward(Slice::whole(&xb), Slice::whole(&wb), Slice::whole(&yb), n, inputs, outputs, epi(&bb))
            .expect("GPU linear");
        let (cxb, cwb, cbb, cdyb) = (buf(&cx), buf(&cw), buf(&cb), buf(&cdy));
        let cyb = ctx.zeroed_storage_buffer("bench conv y", (g.batch * g.out_len() * 4) as u64);
        let cdxb = ctx.zeroed_storage_buffer("bench conv dx", (g.batch * g.in_len() * 4) as u64);
        let fwd = nn
            .conv2d_forward(&g, Slice::whole(&cxb), Slice::whole(&cwb), Slice::whole(&cyb), epi(&cbb))
            .expect("GPU conv forward");
        let bwd = nn
            .conv2d_backward_input(&g, Slice::whole(&cdyb), Slice::whole(&cwb), Slice::whole(&cdxb))
            .expect("GPU conv input gradient");
        nn.time(&[&linear, &fwd, &bwd], 1).expect("GPU warm-up");
        group.throughput(Throughput::Elements(gemm_flops));
        group.bench_function("gpu/linear-1024x256x64", |bch| {
            bch.iter(|| {
                nn.submit(&[&linear], 1).expect("submit");
                ctx.wait().expect("wait")
            })
        });
        group.throughput(Throughput::Elements(conv_flops));
        group.bench_function("gpu/conv-16x32k3s2-fwd+ingrad", |bch| {
            bch.iter(|| {
                nn.submit(&[&fwd, &bwd], 1).expect("submit");
                ctx.wait().expect("wait")
            })
        });
    }
    let mut y = vec![0.0; n * outputs];
    group.throughput(Throughput::Elements(gemm_flops));
    group.bench_function("cpu/linear-1024x256x64", |bch| {
        bch.iter(|| ops::linear_forward(black_box(&x), &w, Some(&b), n, inputs, outputs, &mut y))
    });
    let (mut cy, mut cdx) = (vec![0.0; g.batch * g.out_len()], vec![0.0; g.batch * g.in_len()]);
    group.throughput(Throughput::Elements(conv_flops));
    group.bench_function("cpu/conv-16x32k3s2-fwd+ingrad", |bch| {
        bch.iter(|| {
            ops::conv2d_forward(&g, ops::Layout::Cnhw, black_box(&cx), &cw, Some(&cb), &mut cy);
            ops::conv2d_backward_input(&g, ops::Layout::Cnhw, black_box(&cdy), &cw, &mut cdx);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_samplers, bench_training, bench_nn);
criterion_main!(benches);
