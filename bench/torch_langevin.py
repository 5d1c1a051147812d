#!/usr/bin/env python3
"""The PyTorch Langevin loop on the networks of `ebm bench --suite mlp`, for side-by-side timings.

Runs MLP energies E(x) = MLP(x) through the sampling loop as EBM tutorials write it, eagerly,
with `torch.autograd.grad` for the input gradient every step:

    x.requires_grad_(True)
    energy = model(x).sum()
    grad = torch.autograd.grad(energy, x)[0]
    x = (x - step * grad + sqrt(2 * step) * torch.randn_like(x)).detach()     # ULA

and MALA, the same proposal with a vectorised Metropolis-Hastings correction over all chains
(one forward and input-gradient evaluation per step, as in ebm). The sizes, step size, steps per
timing and warm-up are those of `ebm bench --suite mlp` (src/bin/ebm/bench.rs): SiLU MLPs
d=2 with 2x128 hidden (1024, 16384, 65536 chains), d=32 with 2x256 (1024, 16384), d=784 with
2x512 (1024, 4096); step size 0.001; chains start from N(0, I); steps = chain-step budget /
chains (2e5, 5e4, 1e4 chain-steps) clamped to 5..10000; one untimed warm-up of a tenth of the
steps (at least 2), then one timed run that continues from it, closed by
torch.cuda.synchronize() on a GPU. GFLOP/s counts model FLOPs as ebm does: 4 x weights per
evaluation (forward plus input gradient; biases and activations not counted). The network's
parameters have requires_grad off (as tutorials do while sampling), so only dE/dx is computed.

Side by side on one machine (with a GPU: the engine's GPU and CPU executors, then PyTorch):

    pip install torch safetensors numpy
    cargo run --release -- bench --suite mlp --csv ebm_mlp.csv
    python3 bench/torch_langevin.py --device cuda --csv torch_mlp.csv
    python3 bench/torch_langevin.py --device cpu --threads 2    # against ebm's CPU executor

Same weights in both: `ebm bench` builds its networks with seed 20261122, and `ebm init-mlp`
with that seed writes exactly those networks, which --weights then loads (repeatable):

    for d in 2,128,128,1 32,256,256,1 784,512,512,1; do
      target/release/ebm init-mlp --dims $d --act silu --seed 20261122 --out /tmp/w${d%%,*}.safetensors
    done
    python3 bench/torch_langevin.py --weights /tmp/w2.safetensors --weights /tmp/w32.safetensors \\
        --weights /tmp/w784.safetensors

Without --weights the networks get PyTorch's default initialisation (the same distribution as
ebm's, other draws) from --seed. Options: --device cpu|cuda (default cuda if available),
--sampler mala|ula (default mala, as ebm bench), --weights FILE.safetensors (repeatable; network
written by `ebm init-mlp` or saved from nn.Sequential with keys 0.weight, 0.bias, 2.weight, ...;
activation and sign from its metadata, else silu and E = output), --quick (2x128 at 256 chains,
20 steps, as `ebm bench --quick`), --threads N (torch.set_num_threads), --steps K (fixed steps
per timing, as `ebm bench --steps`), --chains N[,N...] (override the chain counts),
--step-size H, --seed S, --csv PATH (the same columns as `ebm bench --csv`).

Two more options, for bench/device/run.sh:

  --cases NAME:SAMPLER:CHAINS:STEPS[,...]  exactly these cases instead of the mlp suite. NAME is
      ring8 (the 2-d mixture of 8 Gaussians, radius 2, std 0.25), double_wellD (barrier 2, any D,
      as `ebm bench --suite torchebm`) or mlpD0xD1x...x1 (SiLU, default init from --seed);
      SAMPLER is ula, mala or hmc (10 leapfrog steps of the step size, unit mass, as jax_samplers.py).
      Step sizes: 0.01 for ring8 and the double well, 0.001 for an MLP (--step-size overrides).
  --compile  torch.compile one sampler step (the input gradient through torch.func.grad_and_value,
      the proposal and the Metropolis test, one compiled function called once per step); if that
      cannot be compiled, the energy alone is compiled and autograd.grad kept (the table says which).
      The compilation happens in the untimed warm-up. Executor "torch-cuda compile".

A case that fails (out of memory, a compile error) is reported and the others still run; the
exit status is then 1. The CSV is rewritten after every case.

Needs: torch, safetensors (only for --weights), Python 3.8+.
"""
import argparse
import csv
import math
import sys
import time

import torch
from torch import nn

SEED = 20261122  # ebm bench's SEED
STEP_SIZE = 0.001  # ebm bench's step size for the mlp suite
# (layer widths, chain counts, chain-steps per timing): `cases()` in src/bin/ebm/bench.rs.
SUITE = [
    ((2, 128, 128, 1), (1024, 16384, 65536), 2.0e5),
    ((32, 256, 256, 1), (1024, 16384), 5.0e4),
    ((784, 512, 512, 1), (1024, 4096), 1.0e4),
]
QUICK_SUITE = [((2, 128, 128, 1), (256,), 5.0e3)]
# Chain-steps x weights of one suite timing (about 3.4e9 for every network above); a --weights
# network of another shape gets a budget of this much work.
WORK_X_WEIGHTS = 2.0e5 * (2 * 128 + 128 * 128 + 128)


def default_steps(work, chains, quick):
    """`default_steps` in bench.rs: the chain-step budget spread over the chains, clamped."""
    work, lo, hi = (min(work, 5.0e4), 2.0, 50.0) if quick else (work, 5.0, 10000.0)
    return int(math.floor(min(max(work / chains, lo), hi) + 0.5))  # Rust's round(): half away from 0


def activation(name):
    """An nn.Module for ebm's activation names: relu, leaky_relu[:slope], silu, tanh, softplus, elu[:alpha]."""
    base, _, arg = name.lower().partition(":")
    if base in ("relu", "silu", "swish", "tanh", "softplus"):
        return {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[base]()
    if base in ("leaky_relu", "leakyrelu"):
        return nn.LeakyReLU(float(arg) if arg else 0.01)
    if base == "elu":
        return nn.ELU(float(arg) if arg else 1.0)
    raise SystemExit(f"unknown activation {name!r}")


def build_mlp(dims, act="silu"):
    """nn.Sequential(Linear, act, Linear, act, ..., Linear): the layout ebm reads and writes."""
    layers = []
    for k, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        if k > 0:
            layers.append(activation(act))
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def load_mlp(path):
    """A network from a .safetensors file in nn.Sequential naming; returns (model, dims, sign)."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k).float() for k in f.keys()}
    except Exception as e:  # missing, truncated or not safetensors
        raise SystemExit(f"{path}: {e}")
    indices = sorted({int(k.split(".")[0]) for k in tensors})
    expected = {f"{i}.{p}" for i in indices for p in ("weight", "bias")}
    if set(tensors) != expected:
        raise SystemExit(f"{path}: expected tensors {sorted(expected)}, found {sorted(tensors)}")
    weights = [tensors[f"{i}.weight"] for i in indices]
    dims = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    model = build_mlp(dims, meta.get("activation", "silu"))
    # Re-index to this model's positions (files may skip other parameter-free layers).
    state = {f"{2 * k}.{p}": tensors[f"{i}.{p}"] for k, i in enumerate(indices) for p in ("weight", "bias")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise SystemExit(f"{path}: {e}")
    if dims[-1] != 1:
        raise SystemExit(f"{path}: the last layer must output 1 value, not {dims[-1]}")
    sign = -1.0 if meta.get("output") == "neg_energy" else 1.0
    return model, dims, sign


class Ring8(nn.Module):
    """E(x) = -log of the ring8 mixture (8 Gaussians of std 0.25 on a circle of radius 2), [n, 1]."""

    def __init__(self):
        super().__init__()
        t = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        self.register_buffer("means", 2.0 * torch.stack([torch.cos(t), torch.sin(t)], dim=1))
        self.std = 0.25
        self.in_features = 2

    def forward(self, x):
        z = (x[:, None, :] - self.means) / self.std
        log_comp = -0.5 * z.square().sum(-1) - 2 * math.log(self.std) - math.log(2 * math.pi) - math.log(8.0)
        return -torch.logsumexp(log_comp, dim=1, keepdim=True)


class DoubleWell(nn.Module):
    """E(x) = barrier * sum_i (x_i^2 - 1)^2, [n, 1] (`ebm bench --suite torchebm`'s energy)."""

    def __init__(self, dim, barrier=2.0):
        super().__init__()
        self.in_features, self.barrier = dim, barrier

    def forward(self, x):
        return self.barrier * (x.square() - 1.0).square().sum(-1, keepdim=True)


def parse_cases(text, seed):
    """--cases: (name, model, sign, sampler, chains, steps, step size, weights or 0) tuples."""
    out, models = [], {}  # one model per name, so --compile compiles each energy once per sampler
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 4:
            raise SystemExit(f"--cases {item!r}: expected NAME:SAMPLER:CHAINS:STEPS")
        name, sampler, chains, steps = parts
        if sampler not in ("ula", "mala", "hmc"):
            raise SystemExit(f"--cases {item!r}: the sampler is ula, mala or hmc")
        chains, steps = _counts(item, chains, steps)
        if name in models:
            model, h, weights = models[name]
            out.append((name, model, 1.0, sampler, chains, steps, h, weights))
            continue
        if name == "ring8":
            model, h, weights = Ring8(), 0.01, 0
        elif name.startswith("double_well") and name[len("double_well"):].isdigit():
            model, h, weights = DoubleWell(int(name[len("double_well"):])), 0.01, 0
        elif name.startswith("mlp"):
            try:
                dims = [int(d) for d in name[3:].split("x")]
            except ValueError:
                raise SystemExit(f"--cases {item!r}: an MLP is mlpD0xD1x...x1") from None
            if len(dims) < 2 or dims[-1] != 1:
                raise SystemExit(f"--cases {item!r}: an MLP is mlpD0xD1x...x1")
            torch.manual_seed(seed)
            model, h = build_mlp(dims), 0.001
            weights = n_weights(model)
        else:
            raise SystemExit(f"--cases {item!r}: NAME is ring8, double_wellD or mlpD0x...x1")
        models[name] = (model, h, weights)
        out.append((name, model, 1.0, sampler, chains, steps, h, weights))
    return out


def _counts(item, chains, steps):
    try:
        chains, steps = int(chains), int(steps)
    except ValueError:
        raise SystemExit(f"--cases {item!r}: CHAINS and STEPS are integers") from None
    if chains < 1 or steps < 1:
        raise SystemExit(f"--cases {item!r}: CHAINS and STEPS must be at least 1")
    return chains, steps


def in_features(model):
    return model[0].in_features if isinstance(model, nn.Sequential) else model.in_features


def n_weights(model):
    return sum(m.in_features * m.out_features for m in model if isinstance(m, nn.Linear))


# --- the samplers: plain eager PyTorch ------------------------------------------------------

def energy_and_grad(model, x, sign):
    """Per-chain energies [chains] and dE/dx [chains, dim] through torch.autograd.grad."""
    x = x.detach().requires_grad_(True)
    energy = sign * model(x).squeeze(-1)
    grad = torch.autograd.grad(energy.sum(), x)[0]
    return energy.detach(), grad


def ula(model, x, steps, step_size, sign):
    """The tutorial loop: x <- x - h dE/dx + sqrt(2h) noise. Returns (x, accepted=None)."""
    noise_scale = math.sqrt(2.0 * step_size)
    for _ in range(steps):
        x.requires_grad_(True)
        energy = sign * model(x).sum()
        grad = torch.autograd.grad(energy, x)[0]
        x = (x - step_size * grad + noise_scale * torch.randn_like(x)).detach()
    return x, None


def mala(model, x, steps, step_size, sign):
    """ULA proposals with the Metropolis-Hastings correction, all chains at once.

    One energy-and-gradient evaluation per step (at the proposal; the current state's are kept).
    Returns (x, accepted moves per chain).
    """
    h, noise_scale = step_size, math.sqrt(2.0 * step_size)
    energy, grad = energy_and_grad(model, x, sign)
    accepted = torch.zeros(x.shape[0], device=x.device)
    for _ in range(steps):
        y = x - h * grad + noise_scale * torch.randn_like(x)
        energy_y, grad_y = energy_and_grad(model, y, sign)
        # log q(x | y) - log q(y | x) with q(b | a) = N(b; a - h dE/da, 2h I).
        forward = (y - x + h * grad).square().sum(-1)
        backward = (x - y + h * grad_y).square().sum(-1)
        log_alpha = energy - energy_y + (forward - backward) / (4.0 * h)
        accept = torch.rand_like(log_alpha).log() <= log_alpha  # NaN (non-finite proposal): rejected
        x = torch.where(accept[:, None], y, x)
        grad = torch.where(accept[:, None], grad_y, grad)
        energy = torch.where(accept, energy_y, energy)
        accepted += accept
    return x, accepted


def hmc(model, x, steps, step_size, sign, leapfrog=10):
    """HMC with `leapfrog` leapfrog steps of `step_size`, unit mass, all chains at once (as
    jax_samplers.py's hand-written HMC). Returns (x, accepted moves per chain)."""
    h = step_size
    energy, grad = energy_and_grad(model, x, sign)
    accepted = torch.zeros(x.shape[0], device=x.device)
    for _ in range(steps):
        p0 = torch.randn_like(x)
        q, p, grad_q = x, p0, grad
        for _ in range(leapfrog):
            p = p - 0.5 * h * grad_q
            q = q + h * p
            energy_q, grad_q = energy_and_grad(model, q, sign)
            p = p - 0.5 * h * grad_q
        log_alpha = energy - energy_q + 0.5 * p0.square().sum(-1) - 0.5 * p.square().sum(-1)
        accept = torch.rand_like(log_alpha).log() <= log_alpha
        x = torch.where(accept[:, None], q, x)
        grad = torch.where(accept[:, None], grad_q, grad)
        energy = torch.where(accept, energy_q, energy)
        accepted += accept
    return x, accepted


# --- torch.compile: one compiled function per sampler step -------------------------------------

def compiled_sampler(kind, model, sign, step_size, leapfrog=10):
    """A sampler (model, x, steps, step_size, sign) -> (x, accepted) whose step is one function
    compiled by torch.compile, the gradient through torch.func.grad_and_value."""
    h, noise_scale = step_size, math.sqrt(2.0 * step_size)

    def energies(z):
        e = sign * model(z).squeeze(-1)
        return e.sum(), e

    value_grad = torch.func.grad_and_value(energies, has_aux=True)

    def eg(z):
        g, (_, e) = value_grad(z)
        return e, g

    def ula_step(x):
        g, _ = value_grad(x)
        return x - h * g + noise_scale * torch.randn_like(x)

    def mala_step(x, e, g):
        y = x - h * g + noise_scale * torch.randn_like(x)
        ey, gy = eg(y)
        forward = (y - x + h * g).square().sum(-1)
        backward = (x - y + h * gy).square().sum(-1)
        log_alpha = e - ey + (forward - backward) / (4.0 * h)
        accept = torch.rand_like(log_alpha).log() <= log_alpha
        return (torch.where(accept[:, None], y, x), torch.where(accept, ey, e), torch.where(accept[:, None], gy, g),
                accept)

    def hmc_step(x, e, g):
        p0 = torch.randn_like(x)
        q, p, gq, eq = x, p0, g, e
        for _ in range(leapfrog):
            p = p - 0.5 * h * gq
            q = q + h * p
            eq, gq = eg(q)
            p = p - 0.5 * h * gq
        log_alpha = e - eq + 0.5 * p0.square().sum(-1) - 0.5 * p.square().sum(-1)
        accept = torch.rand_like(log_alpha).log() <= log_alpha
        return (torch.where(accept[:, None], q, x), torch.where(accept, eq, e), torch.where(accept[:, None], gq, g),
                accept)

    if kind == "ula":
        step = torch.compile(ula_step)

        def run(model_, x, steps, step_size_, sign_):
            for _ in range(steps):
                x = step(x)
            return x, None
        return run
    step = torch.compile(mala_step if kind == "mala" else hmc_step)

    def run(model_, x, steps, step_size_, sign_):
        e, g = eg(x)
        accepted = torch.zeros(x.shape[0], device=x.device)
        for _ in range(steps):
            x, e, g, accept = step(x, e, g)
            accepted += accept
        return x, accepted
    return run


def compiled_energy_sampler(kind, model):
    """The fallback of --compile: the eager loop on the energy compiled by torch.compile."""
    compiled = torch.compile(model)
    eager = {"ula": ula, "mala": mala, "hmc": hmc}[kind]

    def run(model_, x, steps, step_size, sign):
        return eager(compiled, x, steps, step_size, sign)
    return run


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the table, as `ebm bench` prints it ------------------------------------------------------

HEADERS = ["executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain-steps/s",
           "dispatches/step", "GFLOP/s", "ESS/s"]
CSV_HEADERS = ["executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain_steps_per_s",
               "dispatches_per_step", "gflops", "ess_per_s"]


def si(x):
    """`12.3M`-style formatting with three significant digits (`si` in bench.rs)."""
    scale, unit = next(((s, u) for s, u in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")) if x >= s * 0.9995), (1.0, ""))
    v = x / scale
    digits = 0 if v >= 99.95 else 1 if v >= 9.995 else 2
    return f"{v:.{digits}f}{unit}"


def table(rows):
    cells = [[r["executor"], r["energy"], str(r["dim"]), r["sampler"], str(r["chains"]), str(r["steps"]),
              f"{r['seconds']:.3f}", si(r["rate"]), "-", "-" if r["gflops"] is None else f"{r['gflops']:.2f}", "-"]
             for r in rows]
    widths = [max(len(c) for c in col) for col in zip(HEADERS, *cells)]
    left = (0, 1, 3)  # text columns left-aligned, numbers right-aligned

    def line(row):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(HEADERS), line(["-" * w for w in widths])] + [line(c) for c in cells]) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                   help="default: cuda if available")
    p.add_argument("--sampler", choices=["mala", "ula"], default="mala", help="default: mala, as ebm bench --suite mlp")
    p.add_argument("--weights", action="append", metavar="FILE.safetensors",
                   help="network to load instead of the suite's random ones (repeatable)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2x128 at 256 chains, 20 steps")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    p.add_argument("--steps", type=int, help="steps per timed run for every case")
    p.add_argument("--chains", help="chain counts, comma-separated, for every network")
    p.add_argument("--step-size", type=float, default=STEP_SIZE, help=f"default: {STEP_SIZE}, as ebm bench")
    p.add_argument("--seed", type=int, default=SEED, help="random init of the networks, initial states, noise")
    p.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    p.add_argument("--cases", metavar="NAME:SAMPLER:CHAINS:STEPS[,...]",
                   help="exactly these cases (ring8, double_wellD, mlpD0x...x1; ula, mala, hmc)")
    p.add_argument("--compile", action="store_true", help="torch.compile each sampler step")
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device")
        where = f"cuda: {torch.cuda.get_device_name(device)}"
    else:
        where = f"cpu: {torch.get_num_threads()} threads"
    how = "torch.compile of each step" if a.compile else "eager, autograd.grad every step"
    print(f"torch {torch.__version__} ({how}); {where}")

    # (name, model, sign, sampler, chains, steps, step size, weights)
    cases = []
    if a.cases:
        if a.weights:
            p.error("--cases builds its own energies: give --cases or --weights, not both")
        cases = [(n, m, s, k, c, a.steps or st, a.step_size if a.step_size != STEP_SIZE else h, w)
                 for n, m, s, k, c, st, h, w in parse_cases(a.cases, a.seed)]
    else:
        suite = QUICK_SUITE if a.quick else SUITE
        networks = []  # (name, model, sign, chain counts, work)
        if a.weights:
            for path in a.weights:
                model, dims, sign = load_mlp(path)
                match = [(c, w) for d, c, w in suite if list(d) == dims]
                counts, work = match[0] if match else ((256,) if a.quick else (1024,), WORK_X_WEIGHTS / n_weights(model))
                networks.append((f"mlp{'x'.join(map(str, dims))}", model, sign, counts, work))
        else:
            for dims, counts, work in suite:
                networks.append((f"mlp{'x'.join(map(str, dims))}", build_mlp(dims), 1.0, counts, work))
        if a.chains:
            networks = [(n, m, s, tuple(int(c) for c in a.chains.split(",")), w) for n, m, s, _, w in networks]
        for name, model, sign, counts, work in networks:
            for chains in counts:
                steps = a.steps or default_steps(work, chains, a.quick)
                cases.append((name, model, sign, a.sampler, chains, steps, a.step_size, n_weights(model)))

    executor = f"torch-{device.type}" + (" compile" if a.compile else "")
    rows, failed, non_finite = [], [], 0
    compiled = {}  # (model id, sampler, step size) -> sampler: one compilation per energy and sampler
    for name, model, sign, kind, chains, steps, step_size, weights in cases:
        model = model.to(device).requires_grad_(False)
        dim, flops = in_features(model), 4 * weights
        label = f"{executor}  {name} {kind.upper()} {chains} chains"
        try:
            how = ""
            sampler = {"mala": mala, "ula": ula, "hmc": hmc}[kind]
            warm = max(-(-steps // 10), 2)
            x = torch.randn(chains, dim, device=device)
            if a.compile:
                key = (id(model), kind, step_size)
                if key not in compiled:
                    compiled[key] = (compiled_sampler(kind, model, sign, step_size), "step")
                sampler, how = compiled[key]
                start = time.perf_counter()
                try:
                    x, _ = sampler(model, x, warm, step_size, sign)  # warm-up and compilation, untimed
                except Exception as e:  # noqa: BLE001 - fall back to compiling the energy alone
                    print(f"  {label}: the compiled step failed ({type(e).__name__}: {str(e)[:200]}); "
                          "compiling the energy alone", file=sys.stderr)
                    compiled[key] = (compiled_energy_sampler(kind, model), "energy")
                    sampler, how = compiled[key]
                    x = torch.randn(chains, dim, device=device)
                    x, _ = sampler(model, x, warm, step_size, sign)
                synchronize(device)
                print(f"  {label}: compiled ({how}) and warmed up in {time.perf_counter() - start:.1f} s", file=sys.stderr)
            else:
                x, _ = sampler(model, x, warm, step_size, sign)  # warm-up, untimed
            synchronize(device)
            start = time.perf_counter()
            x, accepted = sampler(model, x, steps, step_size, sign)
            synchronize(device)
            seconds = time.perf_counter() - start
        except Exception as e:  # noqa: BLE001 - one case failing leaves the others
            print(f"  {label}: failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
            failed.append(dict(executor=executor, energy=name, dim=dim, sampler=kind, chains=chains, steps=steps,
                               error=f"{type(e).__name__}: {e}"[:300]))
            if device.type == "cuda":
                torch.cuda.empty_cache()
            write_csv(a.csv, rows, failed)
            continue
        rate = chains * steps / seconds
        non_finite += int((~torch.isfinite(x).all(-1)).sum())
        acc = "" if accepted is None else f", acceptance {accepted.mean().item() / steps:.3f}"
        print(f"  {label}: {steps} steps in {seconds:.3f} s ({si(rate)}/s){acc}", file=sys.stderr)
        rows.append(dict(executor=executor, energy=name, dim=dim, sampler=kind, chains=chains, steps=steps,
                         seconds=seconds, rate=rate, gflops=flops * rate / 1e9 if flops else None,
                         compiled=how))
        write_csv(a.csv, rows, failed)  # after every case, so a run stopped half-way keeps its rows
        del x

    print()
    print(table(rows), end="")
    if non_finite:
        print(f"note: {non_finite} chains ended with a non-finite state; their cases may read fast")
    if a.csv:
        print(f"wrote {a.csv}")
    if failed:
        print(f"note: {len(failed)} case(s) failed (see above)")
        sys.exit(1)


def write_csv(path, rows, failed):
    """--csv: the table's rows (ebm bench's columns, then how it was compiled and any error)."""
    if not path:
        return
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADERS + ["compiled", "error"])
        for r in rows:
            w.writerow([r["executor"], r["energy"], r["dim"], r["sampler"], r["chains"], r["steps"],
                        r["seconds"], r["rate"], "", "" if r["gflops"] is None else r["gflops"], "", r["compiled"], ""])
        for r in failed:
            w.writerow([r["executor"], r["energy"], r["dim"], r["sampler"], r["chains"], r["steps"],
                        "", "", "", "", "", "", r["error"]])


if __name__ == "__main__":
    main()
