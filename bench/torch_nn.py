#!/usr/bin/env python3
"""The PyTorch Langevin loop on the UvA MNIST ConvEBM, for side-by-side timings with `ebm bench --suite nn`.

The network (the engine's text form; see `parse_net` below for the grammar):

    1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f

is the CNNModel of the UvA deep-learning tutorial 8 (energy-based models): it outputs -E, so the
energy is E(x) = -model(x). It is sampled the way EBM tutorials write it, eagerly, with
`torch.autograd.grad` for the input gradient every step and the parameters' requires_grad off:

    x.requires_grad_(True)
    energy = -model(x)
    grad = torch.autograd.grad(energy.sum(), x)[0]
    x = (x - step * grad + sqrt(2 * step) * torch.randn_like(x)).detach()     # ULA

and MALA, the same proposal with a vectorised Metropolis-Hastings correction over all chains
(one forward and input-gradient evaluation per step). Chains start from N(0, I) of shape
[chains, 1, 28, 28] at 128, 1024 and 8192 chains; step size 0.001; steps = a chain-step budget /
chains (--budget: 2e4 on cpu, 1e6 on cuda) clamped to 5..10000; one untimed warm-up of a tenth of
the steps (at least 2), then one timed run that continues from it, closed by
torch.cuda.synchronize() on a GPU. GFLOP/s counts model FLOPs per evaluation as 4 x the
multiply-adds of one forward pass (forward plus input gradient): a convolution does
out_c*out_h*out_w*in_c*kh*kw multiply-adds, a linear layer in*out; biases, activations and pooling
are not counted.

Side by side on one machine (with a GPU: the engine's GPU and CPU executors, then PyTorch):

    pip install torch safetensors numpy
    cargo run --release -- bench --suite nn --csv ebm_nn.csv
    python3 bench/torch_nn.py --device cuda --csv torch_nn.csv
    python3 bench/torch_nn.py --device cpu --threads 2      # against ebm's CPU executor

Same weights in both: write the network with the engine and load it here (the file's metadata
`ebm.net` holds the spec, its tensors are named as nn.Sequential's state_dict: 0.weight, 0.bias,
2.weight, ...):

    target/release/ebm init-net '1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f' \\
        --seed 20261122 --out /tmp/uva.safetensors
    python3 bench/torch_nn.py --device cpu --threads 2 --weights /tmp/uva.safetensors

Without --weights the network gets PyTorch's default initialisation from --seed (--net SPEC picks
another network). Options: --device cpu|cuda (default cuda if available), --threads N
(torch.set_num_threads), --weights FILE.safetensors, --net SPEC, --sampler ula|mala|both (default
both), --chains N[,N...], --budget CHAIN_STEPS, --steps K (fixed steps per timing), --quick (128
chains, at most 50 steps), --step-size H, --seed S, --csv PATH, --compile (torch.compile one
sampler step: the input gradient through torch.func.grad_and_value, the proposal and the
Metropolis test in one compiled function; if that cannot be compiled, the network alone is compiled
and autograd.grad kept; compilation in the untimed warm-up; executor "torch-cuda compile").
A case that fails is reported and the others still run (exit status 1); the CSV is rewritten
after every case.

Needs: torch, safetensors (only for --weights), Python 3.8+.
"""
import argparse
import csv
import math
import os
import re
import sys
import time
from collections import namedtuple

import torch
from torch import nn

SEED = 20261122  # ebm bench's SEED
STEP_SIZE = 0.001
UVA_SPEC = "1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f"
CHAINS = (128, 1024, 8192)
BUDGET = {"cpu": 2.0e4, "cuda": 1.0e6}  # chain-steps per timing


# --- the network text form -------------------------------------------------------------------

Net = namedtuple("Net", "spec input_shape model head out_features macs")
Net.__doc__ = """A parsed network: input_shape (D,) or (C, H, W); model, an nn.Sequential of the layer
segments; head ("f", "-f", "lse" or ("class", y)); out_features K; macs, multiply-adds of one
forward pass of one input."""

_CONV = re.compile(r"^(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?(:nobias)?$")
_LINEAR = re.compile(r"^(\d+)(:nobias)?$")


def _activation(seg):
    """An nn.Module for relu, leaky_relu[:slope], silu|swish, tanh, softplus, elu[:alpha]; else None."""
    base, colon, arg = seg.partition(":")
    if base in ("relu", "silu", "swish", "tanh", "softplus") and not colon:
        return {"relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[base]()
    if base in ("leaky_relu", "elu"):
        try:
            value = float(arg) if colon else (0.01 if base == "leaky_relu" else 1.0)
        except ValueError:
            raise ValueError(f"{seg!r}: {arg!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{seg!r}: the parameter must be finite")
        return nn.LeakyReLU(value) if base == "leaky_relu" else nn.ELU(value)
    return None


class Residual(nn.Module):
    """The engine's residual block `res(...)`: body(x) + (proj(x) if proj is not None else x)."""

    def __init__(self, body, proj=None):
        super().__init__()
        self.body = body
        self.proj = proj

    def forward(self, x):
        return self.body(x) + (self.proj(x) if self.proj is not None else x)


def _split_top(text, sep):
    """`text` split at the `sep`s outside parentheses, each part stripped."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{text!r}: a ')' closes no '('")
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise ValueError(f"{text!r}: a '(' is not closed")
    return parts + [text[start:].strip()]


def parse_net(spec):
    """Parse `INPUT/LAYER/.../LAYER[/head:HEAD]` into a Net (modules get PyTorch's default init).

    INPUT: `D` (a flat vector) or `CxHxW` (an image). LAYER: `N[:nobias]` (nn.Linear, flat input),
    `OCkK[sS][pP][:nobias]` (nn.Conv2d, stride 1 and padding 0 by default), an activation (relu,
    leaky_relu[:slope] (0.01), silu|swish, tanh, softplus, elu[:alpha] (1)), `flatten`,
    `avgpool:K` (nn.AvgPool2d(K): stride K, floor), a residual block `res(L,L,...)` or
    `res(L,...;proj:P)` (a `Residual` module: body, and proj a Conv2d or avgpool). HEAD: `f`
    (E = f(x), default for one output), `-f` (E = -f(x)), `lse` (E = -logsumexp_y f(x)[y], default
    for several outputs), `class:Y` (E = -f(x)[Y]). Raises ValueError naming the offending segment.
    """
    segments = _split_top(spec.strip().lower(), "/")
    if not segments or not segments[0]:
        raise ValueError(f"network {spec!r}: empty")
    dims = segments[0].split("x")
    if len(dims) not in (1, 3) or not all(d.isdigit() and int(d) > 0 for d in dims):
        raise ValueError(f"network {spec!r}: input {segments[0]!r} is neither D nor CxHxW (positive integers)")
    input_shape = tuple(int(d) for d in dims)
    head = None
    if segments[-1].startswith("head:"):
        h = segments.pop()[len("head:"):]
        if h in ("f", "-f", "lse"):
            head = h
        elif h.startswith("class:") and h[len("class:"):].isdigit():
            head = ("class", int(h[len("class:"):]))
        else:
            raise ValueError(f"network {spec!r}: unknown head {h!r} (f, -f, lse, class:Y)")
    layers, shape, macs = _parse_layers(spec, segments[1:], input_shape)
    if not layers:
        raise ValueError(f"network {spec!r}: no layers")
    if len(shape) != 1:
        raise ValueError(f"network {spec!r}: the output is {'x'.join(map(str, shape))}, not flat (add flatten "
                         "and a linear layer)")
    k = shape[0]
    if head is None:
        head = "f" if k == 1 else "lse"
    if head in ("f", "-f") and k != 1:
        raise ValueError(f"network {spec!r}: head:{head} needs one output, the network has {k}")
    if isinstance(head, tuple) and head[1] >= k:
        raise ValueError(f"network {spec!r}: head:class:{head[1]} but the network has {k} outputs")
    return Net(spec, input_shape, nn.Sequential(*layers), head, k, macs)


def _parse_layers(spec, segments, shape):
    """The modules of `segments` from an input of `shape`: (modules, output shape, multiply-adds)."""
    layers, macs = [], 0
    for seg in segments:
        where = f"network {spec!r}, segment {seg!r}"
        if seg.startswith("head:"):
            raise ValueError(f"{where}: nothing may follow the head")
        if seg.startswith("res(") and seg.endswith(")"):
            body_text, _, proj_text = seg[len("res("):-1].partition(";")
            body, out, body_macs = _parse_layers(spec, _split_top(body_text, ","), shape)
            proj = None
            if proj_text:
                if not proj_text.startswith("proj:"):
                    raise ValueError(f"{where}: expected ;proj:P after the body")
                (proj,), skip, proj_macs = _parse_layers(spec, [proj_text[len("proj:"):]], shape)
                if not isinstance(proj, (nn.Conv2d, nn.AvgPool2d)):
                    raise ValueError(f"{where}: the projection must be a convolution or avgpool")
                body_macs += proj_macs
            else:
                skip = shape
            if not body or skip != out:
                raise ValueError(f"{where}: the body gives {out}, the skip {skip}")
            layers.append(Residual(nn.Sequential(*body), proj))
            macs += body_macs
            shape = out
            continue
        act = _activation(seg)
        if act is not None:
            layers.append(act)
            continue
        if seg == "flatten":
            layers.append(nn.Flatten())
            shape = (math.prod(shape),)
            continue
        if seg.startswith("avgpool:"):
            k = seg[len("avgpool:"):]
            if not k.isdigit() or int(k) < 1:
                raise ValueError(f"{where}: the pool size must be a positive integer")
            if len(shape) != 3:
                raise ValueError(f"{where}: pooling needs an image input, got a flat vector of {shape[0]}")
            k = int(k)
            c, hh, ww = shape
            if hh < k or ww < k:
                raise ValueError(f"{where}: a {k}x{k} pool does not fit a {hh}x{ww} input")
            layers.append(nn.AvgPool2d(k))
            shape = (c, hh // k, ww // k)
            continue
        m = _LINEAR.match(seg)
        if m:
            n_out = int(m.group(1))
            if n_out < 1:
                raise ValueError(f"{where}: a layer needs at least one output")
            if len(shape) != 1:
                raise ValueError(f"{where}: a linear layer needs a flat input, got {'x'.join(map(str, shape))} "
                                 "(add flatten)")
            layers.append(nn.Linear(shape[0], n_out, bias=not m.group(2)))
            macs += shape[0] * n_out
            shape = (n_out,)
            continue
        m = _CONV.match(seg)
        if m:
            oc, k = int(m.group(1)), int(m.group(2))
            s, p = int(m.group(3) or 1), int(m.group(4) or 0)
            if oc < 1 or k < 1 or s < 1:
                raise ValueError(f"{where}: channels, kernel and stride must be positive")
            if len(shape) != 3:
                raise ValueError(f"{where}: a convolution needs an image input, got a flat vector of {shape[0]}")
            c, hh, ww = shape
            oh, ow = (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1
            if hh + 2 * p < k or ww + 2 * p < k:
                raise ValueError(f"{where}: a {k}x{k} kernel does not fit a {hh}x{ww} input padded by {p}")
            layers.append(nn.Conv2d(c, oc, kernel_size=k, stride=s, padding=p, bias=not m.group(5)))
            macs += oc * oh * ow * c * k * k
            shape = (oc, oh, ow)
            continue
        raise ValueError(f"{where}: not a layer (N[:nobias], OCkK[sS][pP][:nobias], an activation, flatten, "
                         "avgpool:K) or head:...")
    return layers, shape, macs


def energy_of(head, f):
    """Per-input energies [n] from network outputs f [n, K] under a head."""
    if head == "f":
        return f[:, 0]
    if head == "-f":
        return -f[:, 0]
    if head == "lse":
        return -torch.logsumexp(f, dim=1)
    return -f[:, head[1]]


def load_net(path):
    """A Net from a .safetensors file: spec from the metadata `ebm.net`, tensors in nn.Sequential naming."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # missing, truncated or not safetensors
        raise SystemExit(f"{path}: {e}")
    if "ebm.net" not in meta:
        raise SystemExit(f"{path}: no network spec in the metadata key 'ebm.net' (found keys {sorted(meta)})")
    try:
        net = parse_net(meta["ebm.net"])
    except ValueError as e:
        raise SystemExit(f"{path}: {e}")
    try:
        net.model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError as e:
        raise SystemExit(f"{path}: {e}")
    return net


# --- the samplers: plain eager PyTorch ------------------------------------------------------

def energy_and_grad(model, head, x):
    """Per-chain energies [chains] and dE/dx through torch.autograd.grad."""
    x = x.detach().requires_grad_(True)
    energy = energy_of(head, model(x))
    grad = torch.autograd.grad(energy.sum(), x)[0]
    return energy.detach(), grad


def ula(model, head, x, steps, step_size):
    """The tutorial loop: x <- x - h dE/dx + sqrt(2h) noise. Returns (x, accepted=None)."""
    noise_scale = math.sqrt(2.0 * step_size)
    for _ in range(steps):
        x.requires_grad_(True)
        energy = energy_of(head, model(x))  # -model(x) for the UvA network
        grad = torch.autograd.grad(energy.sum(), x)[0]
        x = (x - step_size * grad + noise_scale * torch.randn_like(x)).detach()
    return x, None


def mala(model, head, x, steps, step_size):
    """ULA proposals with the Metropolis-Hastings correction, all chains at once.

    One energy-and-gradient evaluation per step (at the proposal; the current state's are kept).
    Returns (x, accepted moves per chain).
    """
    h, noise_scale = step_size, math.sqrt(2.0 * step_size)
    energy, grad = energy_and_grad(model, head, x)
    accepted = torch.zeros(x.shape[0], device=x.device)
    for _ in range(steps):
        y = x - h * grad + noise_scale * torch.randn_like(x)
        energy_y, grad_y = energy_and_grad(model, head, y)
        # log q(x | y) - log q(y | x) with q(b | a) = N(b; a - h dE/da, 2h I).
        forward = (y - x + h * grad).square().flatten(1).sum(-1)
        backward = (x - y + h * grad_y).square().flatten(1).sum(-1)
        log_alpha = energy - energy_y + (forward - backward) / (4.0 * h)
        accept = torch.rand_like(log_alpha).log() <= log_alpha  # NaN (non-finite proposal): rejected
        keep = accept.view(-1, *([1] * (x.dim() - 1)))
        x = torch.where(keep, y, x)
        grad = torch.where(keep, grad_y, grad)
        energy = torch.where(accept, energy_y, energy)
        accepted += accept
    return x, accepted


def compiled_sampler(kind, model, head, step_size):
    """--compile: a sampler (model, head, x, steps, step_size) -> (x, accepted) whose step is one
    function compiled by torch.compile, the input gradient through torch.func.grad_and_value."""
    h, noise_scale = step_size, math.sqrt(2.0 * step_size)

    def energies(z):
        e = energy_of(head, model(z))
        return e.sum(), e

    value_grad = torch.func.grad_and_value(energies, has_aux=True)

    def ula_step(x):
        g, _ = value_grad(x)
        return x - h * g + noise_scale * torch.randn_like(x)

    def mala_step(x, e, g):
        y = x - h * g + noise_scale * torch.randn_like(x)
        gy, (_, ey) = value_grad(y)
        forward = (y - x + h * g).square().flatten(1).sum(-1)
        backward = (x - y + h * gy).square().flatten(1).sum(-1)
        log_alpha = e - ey + (forward - backward) / (4.0 * h)
        accept = torch.rand_like(log_alpha).log() <= log_alpha
        keep = accept.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(keep, y, x), torch.where(accept, ey, e), torch.where(keep, gy, g), accept

    if kind == "ula":
        step = torch.compile(ula_step)

        def run(model_, head_, x, steps, step_size_):
            for _ in range(steps):
                x = step(x)
            return x, None
        return run
    step = torch.compile(mala_step)

    def run(model_, head_, x, steps, step_size_):
        g, (_, e) = value_grad(x)
        accepted = torch.zeros(x.shape[0], device=x.device)
        for _ in range(steps):
            x, e, g, accept = step(x, e, g)
            accepted += accept
        return x, accepted
    return run


def compiled_network_sampler(kind, model):
    """The fallback of --compile: the eager loop on the network compiled by torch.compile."""
    compiled = torch.compile(model)
    eager = {"ula": ula, "mala": mala}[kind]

    def run(model_, head, x, steps, step_size):
        return eager(compiled, head, x, steps, step_size)
    return run


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def default_steps(budget, chains, quick):
    """`default_steps` in bench.rs: the chain-step budget spread over the chains, clamped."""
    work, lo, hi = (min(budget, 5.0e4), 2.0, 50.0) if quick else (budget, 5.0, 10000.0)
    return int(math.floor(min(max(work / chains, lo), hi) + 0.5))  # Rust's round(): half away from 0


# --- the table ----------------------------------------------------------------------------------

HEADERS = ["suite", "executor", "workload", "chains", "steps", "seconds", "chain-steps/s", "GFLOP/s"]
CSV_HEADERS = ["suite", "executor", "workload", "chains", "steps", "seconds", "chain_steps_per_s", "gflops"]


def si(x):
    """`12.3M`-style formatting with three significant digits (`si` in bench.rs)."""
    scale, unit = next(((s, u) for s, u in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")) if x >= s * 0.9995), (1.0, ""))
    v = x / scale
    digits = 0 if v >= 99.95 else 1 if v >= 9.995 else 2
    return f"{v:.{digits}f}{unit}"


def table(rows):
    cells = [["nn", r["executor"], r["workload"], str(r["chains"]), str(r["steps"]), f"{r['seconds']:.3f}",
              si(r["rate"]), f"{r['gflops']:.2f}"] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(HEADERS, *cells)]
    left = (0, 1, 2)  # text columns left-aligned, numbers right-aligned

    def line(row):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(HEADERS), line(["-" * w for w in widths])] + [line(c) for c in cells]) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                   help="default: cuda if available")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    p.add_argument("--weights", metavar="FILE.safetensors",
                   help="network to load (spec from the metadata 'ebm.net', e.g. written by `ebm init-net`)")
    p.add_argument("--net", metavar="SPEC", help="network to build with default init (default: the UvA ConvEBM)")
    p.add_argument("--sampler", choices=["ula", "mala", "both"], default="both", help="default: both")
    p.add_argument("--chains", help=f"chain counts, comma-separated (default: {','.join(map(str, CHAINS))})")
    p.add_argument("--budget", type=float, help="chain-steps per timing (default: 2e4 on cpu, 1e6 on cuda)")
    p.add_argument("--steps", type=int, help="steps per timed run for every case (overrides --budget)")
    p.add_argument("--quick", action="store_true", help="smoke run: 128 chains, at most 50 steps")
    p.add_argument("--step-size", type=float, default=STEP_SIZE, help=f"default: {STEP_SIZE}")
    p.add_argument("--seed", type=int, default=SEED, help="random init of the network, initial states, noise")
    p.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    p.add_argument("--compile", action="store_true", help="torch.compile each sampler step")
    a = p.parse_args()
    if a.weights and a.net:
        p.error("--weights carries its own spec; give --weights or --net, not both")
    if a.threads is not None and a.threads < 1:
        p.error("--threads must be at least 1")
    if a.steps is not None and a.steps < 1:
        p.error("--steps must be at least 1")
    if not (a.step_size > 0 and math.isfinite(a.step_size)):
        p.error("--step-size must be positive and finite")
    if a.budget is not None and not (a.budget > 0 and math.isfinite(a.budget)):
        p.error("--budget must be positive and finite")
    try:
        counts = tuple(int(c) for c in a.chains.split(",")) if a.chains else ((128,) if a.quick else CHAINS)
    except ValueError:
        p.error(f"--chains {a.chains!r}: expected integers separated by commas")
    if any(c < 1 for c in counts):
        p.error("--chains: every count must be at least 1")

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device")
        where, executor = f"cuda: {torch.cuda.get_device_name(device)}", "torch-cuda"
    else:
        where, executor = f"cpu: {torch.get_num_threads()} threads", f"torch-cpu({torch.get_num_threads()} threads)"
    if a.compile:
        executor += " compile"
    how = "torch.compile of each step" if a.compile else "eager, autograd.grad every step"
    print(f"torch {torch.__version__} ({how}); {where}")

    if a.weights:
        net = load_net(a.weights)
        source = a.weights
    else:
        try:
            net = parse_net(a.net or UVA_SPEC)
        except ValueError as e:
            raise SystemExit(f"--net: {e}")
        source = f"default init, seed {a.seed}"
    if net.spec.replace(" ", "").lower() == UVA_SPEC.lower():
        name = "uva-convebm"
    elif a.weights:
        name = os.path.splitext(os.path.basename(a.weights))[0]
    else:
        name = "net"
    print(f"{name}: {net.spec} ({source}); {net.macs} multiply-adds per forward pass")

    budget = a.budget or BUDGET[device.type]
    flops = 4 * net.macs  # forward + input gradient
    model = net.model.to(device).requires_grad_(False)
    samplers = ["ula", "mala"] if a.sampler == "both" else [a.sampler]
    rows, failed, non_finite = [], [], 0
    for sampler in samplers:
        # One compiled step per sampler, shared by the chain counts (a new count may recompile).
        step_fn = compiled_sampler(sampler, model, net.head, a.step_size) if a.compile else None
        for chains in counts:
            steps = a.steps or default_steps(budget, chains, a.quick)
            label = f"{executor}  {name} {sampler.upper()} {chains} chains"
            try:
                run, how = {"ula": ula, "mala": mala}[sampler], ""
                warm = max(-(-steps // 10), 2)
                x = torch.randn(chains, *net.input_shape, device=device)
                start = time.perf_counter()
                if a.compile:
                    run, how = step_fn, "step"
                    try:
                        x, _ = run(model, net.head, x, warm, a.step_size)  # compilation and warm-up, untimed
                    except Exception as e:  # noqa: BLE001 - fall back to compiling the network alone
                        print(f"  {label}: the compiled step failed ({type(e).__name__}: {str(e)[:200]}); "
                              "compiling the network alone", file=sys.stderr)
                        run, how = compiled_network_sampler(sampler, model), "network"
                        step_fn = run
                        x = torch.randn(chains, *net.input_shape, device=device)
                        x, _ = run(model, net.head, x, warm, a.step_size)
                    synchronize(device)
                    print(f"  {label}: compiled ({how}) and warmed up in {time.perf_counter() - start:.1f} s",
                          file=sys.stderr)
                else:
                    x, _ = run(model, net.head, x, warm, a.step_size)  # warm-up, untimed
                synchronize(device)
                start = time.perf_counter()
                x, accepted = run(model, net.head, x, steps, a.step_size)
                synchronize(device)
                seconds = time.perf_counter() - start
            except Exception as e:  # noqa: BLE001 - one case failing leaves the others
                print(f"  {label}: failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
                failed.append(dict(executor=executor, workload=f"{name} {sampler}", chains=chains, steps=steps,
                                   error=f"{type(e).__name__}: {e}"[:300]))
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                write_csv(a.csv, rows, failed)
                continue
            rate = chains * steps / seconds
            non_finite += int((~torch.isfinite(x.flatten(1)).all(-1)).sum())
            acc = "" if accepted is None else f", acceptance {accepted.mean().item() / steps:.3f}"
            print(f"  {label}: {steps} steps in {seconds:.3f} s ({si(rate)}/s){acc}", file=sys.stderr)
            rows.append(dict(executor=executor, workload=f"{name} {sampler}", chains=chains, steps=steps,
                             seconds=seconds, rate=rate, gflops=flops * rate / 1e9, compiled=how))
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
    """--csv: the table's rows, then how it was compiled and any error."""
    if not path:
        return
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADERS + ["compiled", "error"])
        for r in rows:
            w.writerow(["nn", r["executor"], r["workload"], r["chains"], r["steps"], r["seconds"], r["rate"],
                        r["gflops"], r["compiled"], ""])
        for r in failed:
            w.writerow(["nn", r["executor"], r["workload"], r["chains"], r["steps"], "", "", "", "", r["error"]])


if __name__ == "__main__":
    main()
