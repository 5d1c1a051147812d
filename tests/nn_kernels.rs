//! The batched layer kernels (shaders/nn/nn_gemm.wgsl, nn_conv2d.wgsl, nn_elementwise.wgsl via
//! src/nn/gpu.rs) against their CPU twins in src/nn/ops.rs, on Philox-normal inputs whose sizes
//! are not multiples of the 64 x 64 x 16 tile. Operands sit at odd offsets inside shared
//! buffers (input and output in one buffer, as a network's activations are), and outputs start
//! out holding garbage so overwrite and accumulate are both checked.
//!
//! Tolerance: f32 sums of K products differ between the tiled order and the CPU's sgemm order
//! by about eps sqrt(K) times the size of the terms; we allow 1e-4 sqrt(K) times the largest
//! |value| of the reference (1e-4 is ~800 eps: room for order effects, far below any indexing
//! error, which is O(1) relative).

mod common;

use ebm_gpu::gpu::{ContextInternals, GpuContext};
use ebm_gpu::nn::Activation;
use ebm_gpu::nn::gpu::{Epilogue, NnKernels, NnOp, Slice};
use ebm_gpu::nn::ops::{self, ConvGeom};
use ebm_gpu::rng::{self, Stream};

fn randn(seed: u64, len: usize) -> Vec<f32> {
    let mut v = vec![0.0; len];
    rng::fill_normals(seed, 0, 0, Stream::Init, &mut v);
    v
}

/// A buffer holding `parts` back to back after `lead` elements of garbage; returns the
/// buffer and each part's offset.
fn packed(ctx: &GpuContext, lead: usize, parts: &[&[f32]]) -> (wgpu::Buffer, Vec<usize>) {
    let mut data = randn(999, lead);
    let mut offsets = Vec::new();
    for p in parts {
        offsets.push(data.len());
        data.extend_from_slice(p);
    }
    data.extend(randn(998, 3));
    (ctx.storage_buffer("test operands", bytemuck::cast_slice(&data)), offsets)
}

fn read(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Vec<f32> {
    let bytes = ctx.read_buffers(&[(buffer, buffer.size())]).unwrap().remove(0);
    bytemuck::cast_slice::<u8, f32>(&bytes)[offset..offset + len].to_vec()
}

fn run(nn: &NnKernels, op: &NnOp) {
    nn.submit(&[op], 1).unwrap();
    nn.context().wait().unwrap();
}

#[track_caller]
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], k: usize) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let tol = 1e-4 * (k as f32).sqrt() * scale;
    let (i, err) = gpu
        .iter()
        .zip(cpu)
        .map(|(g, c)| (g - c).abs())
        .enumerate()
        .fold((0, 0.0f32), |a, (i, e)| if e > a.1 || e.is_nan() { (i, e) } else { a });
    assert!(
        err <= tol,
        "{what}: |gpu - cpu| = {err} at {i} (gpu {}, cpu {}) > {tol} (K = {k}, scale {scale})",
        gpu[i],
        cpu[i]
    );
}

fn setup() -> Option<NnKernels> {
    common::gpu().map(NnKernels::new)
}

#[test]
fn linear_forward_matches_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    // The last four pick the skewed tiles (256 x 16, 16 x 256, 32 x 128, 128 x 32).
    for (n, inputs, outputs, act, bias) in [
        (37, 53, 29, Some(Activation::Silu), true),
        (130, 70, 65, None, false),
        (1, 5, 3, Some(Activation::Tanh), true),
        (300, 40, 9, Some(Activation::Silu), true),
        (5, 37, 300, None, true),
        (30, 21, 200, Some(Activation::Tanh), false),
        (200, 45, 30, None, true),
    ] {
        let x = randn(1, n * inputs);
        let w = randn(2, outputs * inputs);
        let b = randn(3, outputs);
        let mut z = vec![0.0; n * outputs];
        ops::linear_forward(&x, &w, bias.then_some(&b[..]), n, inputs, outputs, &mut z);
        let a: Vec<f32> = z.iter().map(|&v| act.map_or(v, |f| f.eval(v).0)).collect();
        // Activations (x, y, z) share one buffer, parameters (w, b) another.
        let (acts, ao) = packed(&ctx, 5, &[&x, &randn(4, n * outputs), &randn(5, n * outputs)]);
        let (params, po) = packed(&ctx, 7, &[&w, &b]);
        let epi = Epilogue {
            bias: bias.then_some(Slice::new(&params, po[1])),
            act,
            pre_act: act.map(|_| Slice::new(&acts, ao[2])),
        };
        let op = nn
            .linear_forward(
                Slice::new(&acts, ao[0]),
                Slice::new(&params, po[0]),
                Slice::new(&acts, ao[1]),
                n,
                inputs,
                outputs,
                epi,
            )
            .unwrap();
        run(&nn, &op);
        assert_close(
            &format!("linear {n}x{inputs}->{outputs} {act:?}"),
            &read(&ctx, &acts, ao[1], n * outputs),
            &a,
            inputs,
        );
        if act.is_some() {
            assert_close("pre-activation", &read(&ctx, &acts, ao[2], n * outputs), &z, inputs);
        }
        // The input is left alone.
        assert_eq!(read(&ctx, &acts, ao[0], n * inputs), x);
    }
}

#[test]
fn linear_backward_input_matches_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    for (n, inputs, outputs) in [(37, 53, 29), (3, 200, 70)] {
        let dy = randn(11, n * outputs);
        let w = randn(12, outputs * inputs);
        let mut dx = vec![0.0; n * inputs];
        ops::linear_backward_input(&dy, &w, n, inputs, outputs, &mut dx);
        let (grads, go) = packed(&ctx, 3, &[&dy, &randn(13, n * inputs)]);
        let wb = ctx.storage_buffer("w", bytemuck::cast_slice(&w));
        let op = nn
            .linear_backward_input(
                Slice::new(&grads, go[0]),
                Slice::whole(&wb),
                Slice::new(&grads, go[1]),
                n,
                inputs,
                outputs,
            )
            .unwrap();
        run(&nn, &op);
        assert_close(
            &format!("linear dx {n}x{outputs}->{inputs}"),
            &read(&ctx, &grads, go[1], n * inputs),
            &dx,
            outputs,
        );
    }
}

#[test]
fn linear_backward_params_matches_cpu_split_or_not() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    // n = 3000 splits K (the batch) into partial products; n = 37 does not.
    for (n, inputs, outputs, accumulate) in
        [(37, 53, 29, true), (3000, 53, 29, true), (3000, 20, 9, false), (37, 53, 29, false)]
    {
        let x = randn(21, n * inputs);
        let dy = randn(22, n * outputs);
        let dw0 = randn(23, outputs * inputs);
        let db0 = randn(24, outputs);
        let (mut dw, mut db) =
            if accumulate { (dw0.clone(), db0.clone()) } else { (vec![0.0; dw0.len()], vec![0.0; db0.len()]) };
        ops::linear_backward_params(&x, &dy, n, inputs, outputs, &mut dw, Some(&mut db));
        let (acts, ao) = packed(&ctx, 1, &[&x, &dy]);
        let (grads, go) = packed(&ctx, 9, &[&dw0, &db0]);
        let op = nn
            .linear_backward_params(
                Slice::new(&acts, ao[0]),
                Slice::new(&acts, ao[1]),
                Slice::new(&grads, go[0]),
                Some(Slice::new(&grads, go[1])),
                n,
                inputs,
                outputs,
                accumulate,
            )
            .unwrap();
        run(&nn, &op);
        let what =
            format!("linear dW n={n} {inputs}->{outputs} accumulate={accumulate} ({} dispatches)", op.dispatches());
        assert_close(&what, &read(&ctx, &grads, go[0], outputs * inputs), &dw, n);
        assert_close(&format!("{what} db"), &read(&ctx, &grads, go[1], outputs), &db, n);
        if n == 3000 {
            assert!(op.dispatches() == 3, "{what}: expected GEMM, split-K reduction and bias gradient");
        }
    }
}

/// The geometries of the brief: strides, paddings and sizes off the tile, and the UvA MNIST
/// model's first layer.
fn geometries() -> Vec<ConvGeom> {
    let g = |batch, in_c, in_h, in_w, out_c, k, stride, pad| ConvGeom {
        batch,
        in_c,
        in_h,
        in_w,
        out_c,
        kh: k,
        kw: k,
        stride,
        pad,
    };
    vec![
        g(5, 3, 13, 11, 7, 3, 2, 1),
        g(3, 3, 13, 11, 7, 5, 1, 2),
        g(4, 1, 28, 28, 16, 5, 2, 4),
        g(2, 16, 14, 14, 32, 3, 2, 1),
    ]
}

#[test]
fn conv2d_forward_matches_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    for (i, g) in geometries().into_iter().enumerate() {
        let (in_len, out_len) = (g.batch * g.in_len(), g.batch * g.out_len());
        let x = randn(31, in_len);
        let w = randn(32, g.out_c * g.patch());
        let b = randn(33, g.out_c);
        let act = [Some(Activation::Silu), None, Some(Activation::LeakyRelu(0.2)), Some(Activation::Softplus)][i];
        let bias = i != 1;
        let mut z = vec![0.0; out_len];
        ops::conv2d_forward(&g, ops::Layout::Nchw, &x, &w, bias.then_some(&b[..]), &mut z);
        let a: Vec<f32> = z.iter().map(|&v| act.map_or(v, |f| f.eval(v).0)).collect();
        let (acts, ao) = packed(&ctx, 11, &[&x, &randn(34, out_len), &randn(35, out_len)]);
        let (params, po) = packed(&ctx, 2, &[&w, &b]);
        let epi = Epilogue {
            bias: bias.then_some(Slice::new(&params, po[1])),
            act,
            pre_act: act.map(|_| Slice::new(&acts, ao[2])),
        };
        let op = nn
            .conv2d_forward(&g, Slice::new(&acts, ao[0]), Slice::new(&params, po[0]), Slice::new(&acts, ao[1]), epi)
            .unwrap();
        run(&nn, &op);
        assert_close(&format!("conv2d forward {g:?} {act:?}"), &read(&ctx, &acts, ao[1], out_len), &a, g.patch());
        if act.is_some() {
            assert_close(&format!("conv2d pre-activation {g:?}"), &read(&ctx, &acts, ao[2], out_len), &z, g.patch());
        }
    }
}

#[test]
fn conv2d_backward_input_matches_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    let g = |batch, in_c, in_h, in_w, out_c, kh, kw, stride, pad| ConvGeom {
        batch,
        in_c,
        in_h,
        in_w,
        out_c,
        kh,
        kw,
        stride,
        pad,
    };
    let mut gs = geometries();
    gs.extend([
        // Stride 3, rectangular kernel; 20 input channels (two channel groups, one partial).
        g(3, 20, 13, 11, 5, 4, 5, 3, 2),
        // Kernel smaller than the stride: phases no tap reaches (dx = 0 there).
        g(2, 3, 9, 10, 4, 1, 1, 2, 0),
        // Enough output channels x taps for several weight chunks; stride 1; a batch over
        // several pixel blocks.
        g(7, 16, 12, 12, 40, 5, 5, 1, 2),
        // The UvA model's other layers.
        g(6, 32, 8, 8, 64, 3, 3, 2, 1),
        g(6, 64, 4, 4, 64, 3, 3, 2, 1),
    ]);
    for g in gs {
        let (in_len, out_len) = (g.batch * g.in_len(), g.batch * g.out_len());
        let dy = randn(41, out_len);
        let w = randn(42, g.out_c * g.patch());
        let mut dx = vec![0.0; in_len];
        ops::conv2d_backward_input(&g, ops::Layout::Nchw, &dy, &w, &mut dx);
        let (grads, go) = packed(&ctx, 6, &[&dy, &randn(43, in_len)]);
        let wb = ctx.storage_buffer("w", bytemuck::cast_slice(&w));
        let op = nn
            .conv2d_backward_input(&g, Slice::new(&grads, go[0]), Slice::whole(&wb), Slice::new(&grads, go[1]))
            .unwrap();
        run(&nn, &op);
        assert_close(&format!("conv2d dx {g:?}"), &read(&ctx, &grads, go[1], in_len), &dx, g.out_c * g.kh * g.kw);
    }
}

#[test]
fn conv2d_backward_params_matches_cpu_split_or_not() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    let mut gs = geometries();
    // A batch long enough that K = batch x 16 x 16 is split into partial products.
    gs.push(ConvGeom { batch: 24, in_c: 1, in_h: 28, in_w: 28, out_c: 16, kh: 5, kw: 5, stride: 2, pad: 4 });
    for (i, g) in gs.into_iter().enumerate() {
        let accumulate = i % 2 == 0;
        let (in_len, out_len) = (g.batch * g.in_len(), g.batch * g.out_len());
        let x = randn(51, in_len);
        let dy = randn(52, out_len);
        let dw0 = randn(53, g.out_c * g.patch());
        let db0 = randn(54, g.out_c);
        let (mut dw, mut db) =
            if accumulate { (dw0.clone(), db0.clone()) } else { (vec![0.0; dw0.len()], vec![0.0; db0.len()]) };
        ops::conv2d_backward_params(&g, ops::Layout::Nchw, &x, &dy, &mut dw, Some(&mut db));
        let (acts, ao) = packed(&ctx, 4, &[&x, &dy]);
        let (grads, go) = packed(&ctx, 1, &[&dw0, &db0]);
        let op = nn
            .conv2d_backward_params(
                &g,
                Slice::new(&acts, ao[0]),
                Slice::new(&acts, ao[1]),
                Slice::new(&grads, go[0]),
                Some(Slice::new(&grads, go[1])),
                accumulate,
            )
            .unwrap();
        run(&nn, &op);
        let k = g.batch * g.out_h() * g.out_w();
        let what = format!("conv2d dW {g:?} accumulate={accumulate} ({} dispatches)", op.dispatches());
        assert_close(&what, &read(&ctx, &grads, go[0], dw.len()), &dw, k);
        assert_close(&format!("{what} db"), &read(&ctx, &grads, go[1], db.len()), &db, k);
    }
}

#[test]
fn activations_match_cpu_formulas() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    let len = 1000;
    // Spread wide enough to reach the saturated tails.
    let z: Vec<f32> = randn(61, len).iter().map(|v| 4.0 * v).collect();
    let da = randn(62, len);
    for act in [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Silu,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Elu(0.7),
    ] {
        let (buf, o) = packed(&ctx, 3, &[&z, &da, &randn(63, len), &randn(64, len)]);
        let fwd = nn.activation_forward(act, Slice::new(&buf, o[0]), Slice::new(&buf, o[2]), len).unwrap();
        let bwd = nn
            .activation_backward(act, Slice::new(&buf, o[0]), Slice::new(&buf, o[1]), Slice::new(&buf, o[3]), len)
            .unwrap();
        nn.submit(&[&fwd, &bwd], 1).unwrap();
        let a: Vec<f32> = z.iter().map(|&v| act.eval(v).0).collect();
        let dz: Vec<f32> = z.iter().zip(&da).map(|(&v, d)| d * act.eval(v).1).collect();
        assert_close(&format!("{act:?} forward"), &read(&ctx, &buf, o[2], len), &a, 1);
        assert_close(&format!("{act:?} backward"), &read(&ctx, &buf, o[3], len), &dz, 1);
    }
}

#[test]
fn avgpool_matches_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    // 13 x 11 with k = 2 and 3 leaves rows and columns no window covers.
    for (planes, h, w, k) in [(7, 13, 11, 2), (5, 13, 11, 3), (64, 28, 28, 2)] {
        let (oh, ow) = (h / k, w / k);
        let x = randn(71, planes * h * w);
        let dy = randn(72, planes * oh * ow);
        let mut y = vec![0.0; planes * oh * ow];
        let mut dx = vec![0.0; planes * h * w];
        ops::avgpool2d_forward(planes, h, w, k, &x, &mut y);
        ops::avgpool2d_backward(planes, h, w, k, &dy, &mut dx);
        let (buf, o) = packed(&ctx, 2, &[&x, &randn(73, y.len()), &dy, &randn(74, dx.len())]);
        let fwd = nn.avgpool2d_forward(planes, h, w, k, Slice::new(&buf, o[0]), Slice::new(&buf, o[1])).unwrap();
        let bwd = nn.avgpool2d_backward(planes, h, w, k, Slice::new(&buf, o[2]), Slice::new(&buf, o[3])).unwrap();
        nn.submit(&[&fwd, &bwd], 1).unwrap();
        assert_close(&format!("avgpool forward {planes}x{h}x{w} k{k}"), &read(&ctx, &buf, o[1], y.len()), &y, k * k);
        assert_close(&format!("avgpool backward {planes}x{h}x{w} k{k}"), &read(&ctx, &buf, o[3], dx.len()), &dx, 1);
    }
}

/// The residual blocks' sum and copy (`add_copy`) at offsets in one buffer, out of place and
/// in place (c = a + c), over more elements than one row of workgroups.
#[test]
fn residual_sum_and_copy_match_cpu() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    let len = 70_001;
    let (a, b) = (randn(81, len), randn(82, len));
    let (buf, o) = packed(&ctx, 3, &[&a, &b, &randn(83, len), &randn(84, len)]);
    let at = |i: usize| Slice::new(&buf, o[i]);
    let sum = nn.add_copy(at(0), Some(at(1)), at(2), len).unwrap();
    let copy = nn.add_copy(at(0), None, at(3), len).unwrap();
    // In place: b += a.
    let in_place = nn.add_copy(at(1), Some(at(0)), at(1), len).unwrap();
    nn.submit(&[&sum, &copy, &in_place], 1).unwrap();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(read(&ctx, &buf, o[2], len), want, "sum");
    assert_eq!(read(&ctx, &buf, o[3], len), a, "copy");
    assert_eq!(read(&ctx, &buf, o[1], len), want, "in-place sum");
    // The last part is followed by 3 values: 4 more run past the buffer's end.
    assert!(nn.add_copy(at(0), None, at(3), len + 4).is_err(), "an output past the end");
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let Some(nn) = setup() else { return };
    let ctx = nn.context().clone();
    let small = ctx.zeroed_storage_buffer("small", 4 * 100);
    let s = Slice::whole(&small);
    // 10 x 20 inputs do not fit 100 elements.
    let e = nn.linear_forward(s, s, s, 10, 20, 3, Epilogue::default()).err().expect("too short a buffer");
    assert!(e.to_string().contains("linear forward input"), "{e}");
    // An offset past the end.
    assert!(nn.activation_forward(Activation::Relu, Slice::new(&small, 95), s, 10).is_err());
    let g = ConvGeom { batch: 1, in_c: 1, in_h: 4, in_w: 4, out_c: 1, kh: 3, kw: 3, stride: 0, pad: 0 };
    assert!(
        nn.conv2d_forward(&g, s, s, s, Epilogue::default()).err().expect("stride 0").to_string().contains("stride")
    );
    let g = ConvGeom { stride: 1, kh: 7, ..g };
    assert!(nn.conv2d_backward_input(&g, s, s, s).is_err(), "kernel larger than the padded input");
    assert!(nn.avgpool2d_forward(1, 2, 2, 3, s, s).is_err(), "window larger than the plane");
    assert!(nn.linear_backward_params(s, s, s, None, 0, 2, 2, true).is_err(), "empty batch");
}
