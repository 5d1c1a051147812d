#!/usr/bin/env python3
"""PyTorch on the training, RBM and particle workloads of bench/device/run.sh, for side-by-side timings.

Each workload is written the way the tutorials and libraries it comes from write it, in plain
PyTorch (eager, or with --compile), and timed after an untimed warm-up, closed by
torch.cuda.synchronize() on a GPU:

  cd         A training step of the UvA tutorial-8 ConvEBM (CNNModel, E = -f) by contrastive
             divergence, as the tutorial writes it: negatives from a replay buffer of 8192
             images (5 % restarted from uniform noise), K Langevin steps (noise std 0.005 added,
             clamp to [-1, 1], gradient clamped to +-0.03, step 10, clamp again), then
             loss = alpha (E+^2 + E-^2) + E+ - E- (alpha 0.1), Adam (lr 1e-4, betas (0, 0.999)),
             gradient clipped to norm 0.1. `ebm train --loss cd` on images, same settings.
  jem        A JEM step on the same ConvEBM with 10 outputs (E(x) = -logsumexp f(x)):
             cross-entropy on labelled images plus the CD loss above on E, K Langevin steps.
  dsm        Denoising score matching, one noise level sigma = 0.1: x~ = x + sigma n,
             loss = sigma^2 / 2 mean |-dE/dx(x~) + n / sigma|^2 (a double backward), Adam.
  rbm        One epoch of PCD-1 on a 784x500 Bernoulli RBM over binarised MNIST rows (batch
             100, SGD lr 0.05, no momentum, as `ebm rbm train --pcd 1 --momentum 0`): persistent
             chains as many as the batch, one block-Gibbs sweep per batch. Figure: rows/s.
  ais        Annealed importance sampling on that RBM (784x500, random weights of std 0.01):
             R runs x B temperatures from the uniform base and from the data's base-rate model
             (two estimates, as `ebm rbm eval --reverse-gibbs 0`), one Gibbs transition per
             temperature. Figure: AIS runs/s (2 R / seconds).
  particles  Frames of the particles example: K ULA steps of N chains on ring8, then the chains
             splatted into a size x size density image (index_put_ with accumulate) and scaled
             to bytes; no file output. Figure: frames/s.

    python3 bench/torch_train.py --device cuda --workloads cd,jem,dsm --steps 20 --csv train.csv
    python3 bench/torch_train.py --device cuda --workloads rbm,ais --data shared/data/mnist
    python3 bench/torch_train.py --device cuda --workloads particles --chains 65536,1048576

Options: --device cpu|cuda, --threads N, --workloads LIST (cd, jem, dsm, rbm, ais, particles),
--data DIR (MNIST IDX .gz folder; cd/jem/dsm/rbm; without it the images are uniform noise and
JEM's labels random), --steps N (training steps timed, default 20), --batch B (default 128),
--langevin-steps K (cd default 60, jem 20, as `ebm train` on images), --limit N (rbm rows,
default 60000), --ais-runs R (default 100), --betas B (default 15000), --chains LIST (particles,
default 65536,1048576), --frames F (default 60), --frame-steps K (default 4), --size PX
(default 512), --compile (torch.compile: the network of cd and jem, the whole DSM loss and
gradient through torch.func, the Gibbs sweeps of rbm and ais, the particle frame), --seed S,
--csv PATH (workload, executor, size, seconds, figure, unit, compiled, error; rewritten after
each workload). A workload that fails is reported and the others still run (exit status 1).

Needs: torch, numpy (only for --data), Python 3.8+.
"""
import argparse
import csv
import gzip
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

SEED = 20261122


# --- the networks ------------------------------------------------------------------------------

def convebm(outputs=1):
    """The UvA tutorial-8 CNNModel (1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/
    64k3s2p1/swish/flatten/64/swish/OUTPUTS); f = model(x), E = -f (one output) or -logsumexp f."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2, padding=4), nn.SiLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU(),
        nn.Flatten(), nn.Linear(256, 64), nn.SiLU(), nn.Linear(64, outputs))


def energy_of(f):
    return -f[:, 0] if f.shape[1] == 1 else -torch.logsumexp(f, dim=1)


# --- data ----------------------------------------------------------------------------------------

def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def mnist(data, rows):
    """(images [rows, 784] in [0, 1], labels [rows]) from an MNIST folder, or noise without one."""
    if data:
        images = read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[:rows].reshape(-1, 784).float() / 255.0
        labels = read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))[:rows].long()
        return images, labels
    g = torch.Generator().manual_seed(SEED)
    return torch.rand(rows, 784, generator=g), torch.randint(0, 10, (rows,), generator=g)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- cd, jem, dsm: training steps ------------------------------------------------------------------

class Trainer:
    """The tutorial's training loop: replay buffer, Langevin negatives, Adam."""

    def __init__(self, kind, device, images, labels, a):
        self.kind, self.device, self.a = kind, device, a
        torch.manual_seed(a.seed)
        self.model = convebm(10 if kind == "jem" else 1).to(device)
        self.net = torch.compile(self.model) if a.compile and kind != "dsm" else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.0, 0.999))
        self.images = (images.to(device) * 2 - 1).view(-1, 1, 28, 28)  # [-1, 1]
        self.labels = labels.to(device)
        self.buffer = torch.rand(8192, 1, 28, 28, device=device) * 2 - 1
        self.k = a.langevin_steps or (20 if kind == "jem" else 60)
        self.batch = a.batch
        if kind == "dsm" and a.compile:
            self.dsm_step = torch.compile(self.dsm_functional())

    def langevin(self, x):
        """The tutorial's sampler: noise, clamp, clamped gradient step, clamp; parameters frozen."""
        self.model.requires_grad_(False)
        x = x.detach()
        noise = torch.empty_like(x)
        for _ in range(self.k):
            noise.normal_(0, 0.005)
            x = (x + noise).clamp(-1, 1).requires_grad_(True)
            e = energy_of(self.net(x)).sum()
            g = torch.autograd.grad(e, x)[0].clamp(-0.03, 0.03)
            x = (x - 10.0 * g).clamp(-1, 1).detach()
        self.model.requires_grad_(True)
        return x

    def step(self):
        n = self.images.shape[0]
        idx = torch.randint(0, n, (self.batch,), device=self.device)
        pos = self.images[idx]
        if self.kind == "dsm":
            return self.dsm(pos)
        slots = torch.randint(0, self.buffer.shape[0], (self.batch,), device=self.device)
        start = self.buffer[slots]
        fresh = torch.rand(self.batch, device=self.device) < 0.05
        start = torch.where(fresh[:, None, None, None], torch.rand_like(start) * 2 - 1, start)
        neg = self.langevin(start)
        self.buffer[slots] = neg
        f_pos, f_neg = self.net(pos), self.net(neg)
        e_pos, e_neg = energy_of(f_pos), energy_of(f_neg)
        loss = 0.1 * (e_pos.square() + e_neg.square()).mean() + e_pos.mean() - e_neg.mean()
        if self.kind == "jem":
            loss = loss + F.cross_entropy(f_pos, self.labels[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.1)
        self.opt.step()

    def dsm(self, x, sigma=0.1):
        noise = torch.randn_like(x)
        if self.a.compile:
            params = {k: v.detach() for k, v in self.model.named_parameters()}
            grads, _ = self.dsm_step(params, x, noise)
            for name, p in self.model.named_parameters():
                p.grad = grads[name]
        else:
            xt = (x + sigma * noise).requires_grad_(True)
            e = energy_of(self.model(xt)).sum()
            g = torch.autograd.grad(e, xt, create_graph=True)[0]
            loss = 0.5 * sigma ** 2 * (-g + noise / sigma).square().flatten(1).sum(-1).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.1)
        self.opt.step()

    def dsm_functional(self, sigma=0.1):
        """The DSM loss's parameter gradient through torch.func (compilable: no double backward)."""
        from torch.func import functional_call, grad, grad_and_value
        model = self.model

        def energy_sum(params, x):
            return energy_of(functional_call(model, params, (x,))).sum()

        def loss(params, x, noise):
            g = grad(energy_sum, argnums=1)(params, x + sigma * noise)
            return 0.5 * sigma ** 2 * (-g + noise / sigma).square().flatten(1).sum(-1).mean()

        return grad_and_value(loss)


def time_training(kind, device, a, images, labels):
    t = Trainer(kind, device, images, labels, a)
    for _ in range(2):  # warm-up (and compilation), untimed
        t.step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(a.steps):
        t.step()
    synchronize(device)
    seconds = time.perf_counter() - start
    k = "" if kind == "dsm" else f", K={t.k}"
    return dict(size=f"batch {t.batch}{k}, {a.steps} steps", seconds=seconds, figure=a.steps / seconds,
                unit="steps/s")


# --- rbm, ais ------------------------------------------------------------------------------------

def gibbs_sweep(v, w, b, c):
    """One block-Gibbs sweep v -> h -> v' of a Bernoulli RBM."""
    h = torch.bernoulli(torch.sigmoid(v @ w + c))
    return torch.bernoulli(torch.sigmoid(h @ w.T + b))


def time_rbm(device, a, images):
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    x = torch.bernoulli(images[: a.limit], generator=g).to(device)
    n_vis, n_hid, batch, lr = 784, 500, 100, 0.05
    w = (0.01 * torch.randn(n_vis, n_hid, generator=g)).to(device)
    b, c = torch.zeros(n_vis, device=device), torch.zeros(n_hid, device=device)
    chains = torch.bernoulli(torch.full((batch, n_vis), 0.5, device=device))
    sweep = torch.compile(gibbs_sweep) if a.compile else gibbs_sweep

    def epoch(rows, chains):
        for i in range(0, rows.shape[0] - batch + 1, batch):
            v = rows[i:i + batch]
            ph = torch.sigmoid(v @ w + c)
            chains = sweep(chains, w, b, c)
            phn = torch.sigmoid(chains @ w + c)
            w.add_(lr / batch * (v.T @ ph - chains.T @ phn))
            b.add_(lr * (v - chains).mean(0))
            c.add_(lr * (ph - phn).mean(0))
        return chains

    chains = epoch(x[: 10 * batch], chains)  # warm-up (and compilation), untimed
    synchronize(device)
    start = time.perf_counter()
    epoch(x, chains)
    synchronize(device)
    seconds = time.perf_counter() - start
    rows = x.shape[0] // batch * batch
    return dict(size=f"784x500, {rows} rows, batch {batch}", seconds=seconds, figure=rows / seconds, unit="rows/s")


def time_ais(device, a, images):
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    n_vis, n_hid, runs, betas = 784, 500, a.ais_runs, a.betas
    w = (0.01 * torch.randn(n_vis, n_hid, generator=g)).to(device)
    b, c = (0.01 * torch.randn(n_vis, generator=g)).to(device), torch.zeros(n_hid, device=device)
    mean = images[:10000].mean(0).clamp(0.05, 0.95)
    base_rate = torch.log(mean / (1 - mean)).to(device)
    schedule = torch.linspace(0.0, 1.0, betas, device=device)

    def transition(v, beta, a_base):
        """One Gibbs transition at inverse temperature beta between the base (visible biases
        a_base, no hidden) and the RBM; returns v' and the log weight increment's terms."""
        h = torch.bernoulli(torch.sigmoid(beta * (v @ w + c)))
        return torch.bernoulli(torch.sigmoid((1 - beta) * a_base + beta * (h @ w.T + b)))

    def log_p(v, beta, a_base):
        """log of the unnormalised intermediate density at beta (hidden units summed out)."""
        return (1 - beta) * (v @ a_base) + beta * (v @ b) + F.softplus(beta * (v @ w + c)).sum(-1)

    step = torch.compile(transition) if a.compile else transition

    def run(n_betas, a_base):
        v = torch.bernoulli(torch.sigmoid(a_base).expand(runs, n_vis))
        log_w = torch.zeros(runs, device=device)
        sched = schedule if n_betas == betas else torch.linspace(0.0, 1.0, n_betas, device=device)
        for k in range(1, n_betas):
            log_w += log_p(v, sched[k], a_base) - log_p(v, sched[k - 1], a_base)
            v = step(v, sched[k], a_base)
        return log_w

    bases = [torch.zeros(n_vis, device=device), base_rate]
    for base in bases:
        run(min(betas, 20), base)  # warm-up (and compilation), untimed
    synchronize(device)
    start = time.perf_counter()
    for base in bases:
        run(betas, base)
    synchronize(device)
    seconds = time.perf_counter() - start
    return dict(size=f"784x500, {runs} runs x {betas} betas x 2 estimates", seconds=seconds,
                figure=2 * runs / seconds, unit="AIS runs/s")


# --- particles -------------------------------------------------------------------------------------

def time_particles(device, a, chains):
    t = torch.arange(8, dtype=torch.float32, device=device) * (2 * math.pi / 8)
    means = 2.0 * torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    h, size, view = 0.01, a.size, 3.0

    def energy(x):
        z = (x[:, None, :] - means) / 0.25
        return -torch.logsumexp(-0.5 * z.square().sum(-1), dim=1)

    grad = torch.func.grad(lambda x: energy(x).sum())

    def frame(x):
        for _ in range(a.frame_steps):
            x = x - h * grad(x) + math.sqrt(2 * h) * torch.randn_like(x)
        pix = ((x + view) / (2 * view) * size).long()
        inside = (pix >= 0).all(1) & (pix < size).all(1)
        flat = torch.where(inside, pix[:, 1] * size + pix[:, 0], torch.zeros_like(pix[:, 0]))
        density = torch.zeros(size * size, device=x.device).index_put_((flat,), inside.float(), accumulate=True)
        image = (density * (255.0 / 8.0)).clamp(0, 255).to(torch.uint8)
        return x, image

    step = torch.compile(frame) if a.compile else frame
    x = 1.5 * torch.randn(chains, 2, device=device)
    for _ in range(3):  # warm-up (and compilation), untimed
        x, _ = step(x)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(a.frames):
        x, image = step(x)
        synchronize(device)  # the example waits for every frame too
    seconds = time.perf_counter() - start
    return dict(size=f"{chains} chains, {a.frame_steps} ULA steps/frame, {size}px", seconds=seconds,
                figure=a.frames / seconds, unit="frames/s")


# --- main ------------------------------------------------------------------------------------------

WORKLOADS = ("cd", "jem", "dsm", "rbm", "ais", "particles")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--data", metavar="DIR", help="MNIST folder (IDX .gz files)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--langevin-steps", type=int)
    p.add_argument("--limit", type=int, default=60000)
    p.add_argument("--ais-runs", type=int, default=100)
    p.add_argument("--betas", type=int, default=15000)
    p.add_argument("--chains", default="65536,1048576")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--frame-steps", type=int, default=4)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--csv", metavar="PATH")
    a = p.parse_args()
    workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"--workloads: unknown {unknown}; known: {', '.join(WORKLOADS)}")
    if min(a.steps, a.batch, a.limit, a.ais_runs, a.frames, a.frame_steps, a.size) < 1 or a.betas < 2:
        p.error("--steps, --batch, --limit, --ais-runs, --frames, --frame-steps, --size must be >= 1, --betas >= 2")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    executor = f"torch-{device.type}" + (" compile" if a.compile else "")
    print(f"torch {torch.__version__} ({'torch.compile' if a.compile else 'eager'}); {device.type}: {where}")

    rows_needed = max(a.limit if "rbm" in workloads else 0, 10000 if "ais" in workloads else 0,
                      4096 if {"cd", "jem", "dsm"} & set(workloads) else 0)
    images, labels = mnist(a.data, rows_needed) if rows_needed else (None, None)
    results, failed = [], []
    for wl in workloads:
        cases = [int(c) for c in a.chains.split(",")] if wl == "particles" else [None]
        for chains in cases:
            start = time.perf_counter()
            try:
                if wl in ("cd", "jem", "dsm"):
                    r = time_training(wl, device, a, images, labels)
                elif wl == "rbm":
                    r = time_rbm(device, a, images)
                elif wl == "ais":
                    r = time_ais(device, a, images)
                else:
                    r = time_particles(device, a, chains)
            except Exception as e:  # noqa: BLE001 - one workload failing leaves the others
                print(f"  {executor} {wl}{'' if chains is None else f' {chains} chains'}: failed: "
                      f"{type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
                failed.append(dict(workload=wl, executor=executor, size="" if chains is None else f"{chains} chains",
                                   error=f"{type(e).__name__}: {e}"[:300]))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            else:
                r.update(workload=wl, executor=executor, compiled="yes" if a.compile else "")
                results.append(r)
                print(f"  {executor} {wl} ({r['size']}): {r['figure']:.4g} {r['unit']} "
                      f"({r['seconds']:.3f} s timed, {time.perf_counter() - start:.1f} s in all)", file=sys.stderr)
            write_csv(a.csv, results, failed)
    for r in results:
        print(f"{r['workload']:10} {r['executor']:20} {r['size']:50} {r['figure']:12.4g} {r['unit']}")
    if failed:
        print(f"note: {len(failed)} workload(s) failed (see above)")
        sys.exit(1)


def write_csv(path, results, failed):
    if not path:
        return
    cols = ["workload", "executor", "size", "seconds", "figure", "unit", "compiled", "error"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(results + failed)


if __name__ == "__main__":
    main()
