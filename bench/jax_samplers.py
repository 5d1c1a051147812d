#!/usr/bin/env python3
"""JAX + BlackJAX on the workloads of `ebm bench`, with the engine's CPU executor side by side.

The same energies, samplers, chain counts, steps, step sizes and warm-up as `ebm bench`
(src/bin/ebm/bench.rs):

  langevin  ULA and MALA on ring8 (2-d mixture of 8 Gaussians), a 10-d diagonal Gaussian and a
            32-d double well; 1024, 16384 and 65536 chains; steps = chain-step budget / chains
            (6e6, 8e6, 3e6) clamped to 5..10000; step sizes 0.01, 0.05, 0.005.
  torchebm  double well (barrier 2) at 64 x d=8 x 50 steps, 256 x 32 x 100, 1024 x 128 x 200;
            ULA and HMC with 10 leapfrog steps, step size 0.01.
  mlp       MALA on a 2-128-128-1 SiLU MLP, E(x) = MLP(x), step size 0.001; 1024, 16384 and
            65536 chains, 2e5 chain-steps per timing. (Weights drawn as PyTorch/ebm initialise;
            the timing does not depend on their values.)

MALA and HMC run twice: as BlackJAX's kernels (`blackjax.mala`, `blackjax.hmc` with a unit mass
matrix and 10 integration steps), vmapped over chains with one key per chain per step, as
BlackJAX's documentation writes many chains (executor "blackjax"); and written by hand in
jax.numpy on the whole batch at once (executor "jax": one key per step, a batched Metropolis
test), which is often faster. ULA is the two-line update in jax.numpy (BlackJAX has no
unadjusted Langevin kernel). A run is `jax.lax.scan` over the steps inside one `jax.jit`. The
ratio column compares the engine with the faster of the two.
Each timing first runs the compiled function once on the warm-up steps (a tenth of the steps,
at least 2: compilation and first-touch stay out), then runs all the steps once (compiling that
shape) and times a second run, ended by `block_until_ready`. A timing under --min-seconds
(default 1 s) is repeated with proportionally more steps after a warm-up run of that shape, so
that JAX's fixed cost per call (dispatch, the scan's setup) stays a small share of it; the
engine's rows get the same rule (`ebm bench --min-seconds`). Chains start from N(0, I) (other
draws than ebm's; timings do not depend on them).

One command runs both side by side (the engine's CPU executor first, then JAX, suite by suite),
and prints one table with the ratio ours / the faster peer:

    python3 bench/jax_samplers.py --ebm target/release/ebm --suite all
    python3 bench/jax_samplers.py --quick            # JAX only, a few seconds

Options: --suite langevin|torchebm|mlp|all, --quick (256 and 1024 chains, <= 50 steps, as
`ebm bench --quick`), --ebm PATH (also run `PATH bench --backend cpu --suite S --csv ...` and
join its rows), --csv PATH (the table's rows), --platform cpu|gpu (default cpu; JAX's device),
--min-seconds S (each timing at least S seconds, both sides; 0: the planned steps only),
--cases NAME:SAMPLER:CHAINS:STEPS[,...] (exactly these cases instead of a suite; NAME is ring8,
gaussian10, double_wellD (barrier 2, any D) or mlp2x128x128x1; SAMPLER ula, mala or hmc; the
step size is the suite's for that energy: 0.01, 0.05, 0.01, 0.001), --no-blackjax (the hand-written
jax.numpy rows only). bench/device/run.sh uses --cases.

Needs: jax, numpy, and blackjax for the "blackjax" rows (pip install jax blackjax); without
blackjax those rows are left out with a note and the jax.numpy rows still run.
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time

SEED = 20261122


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="all", choices=["all", "langevin", "torchebm", "mlp"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--ebm", metavar="PATH", help="the ebm binary, to run its CPU executor side by side")
    p.add_argument("--csv", metavar="PATH")
    p.add_argument("--platform", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--cases", metavar="NAME:SAMPLER:CHAINS:STEPS[,...]",
                   help="exactly these cases (e.g. double_well128:hmc:1024:200,ring8:mala:16384:500)")
    p.add_argument("--no-blackjax", action="store_true", help="leave out the blackjax rows")
    p.add_argument("--min-seconds", type=float, default=None, metavar="S",
                   help="time each case for at least S seconds, both sides (default 1; 0 with --quick)")
    return p.parse_args()


ARGS = parse_args()
MIN_SECONDS = ARGS.min_seconds if ARGS.min_seconds is not None else (0.0 if ARGS.quick else 1.0)
os.environ.setdefault("JAX_PLATFORMS", ARGS.platform if ARGS.platform == "cpu" else "cuda")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

try:
    import blackjax  # noqa: E402
except ImportError:  # the jax.numpy rows still run; the blackjax rows are left out
    blackjax = None


def ring8_energy(x):
    t = jnp.arange(8) * (2 * math.pi / 8)
    means = 2.0 * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    std = 0.25
    z = (x[None, :] - means) / std
    log_comp = -0.5 * jnp.sum(z * z, axis=1) - 2 * jnp.log(std) - jnp.log(2 * math.pi) - jnp.log(8.0)
    return -jax.scipy.special.logsumexp(log_comp)


def gaussian10_energy(x):
    i = jnp.arange(10)
    mean = 0.5 * i - 2.0
    std = 0.5 + 0.15 * i
    return 0.5 * jnp.sum(((x - mean) / std) ** 2)


def double_well_energy(x, barrier=2.0):
    return barrier * jnp.sum((x * x - 1.0) ** 2)


def mlp_energy(dims):
    key = jax.random.PRNGKey(SEED)
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1.0 / math.sqrt(fan_in)
        params.append((jax.random.uniform(kw, (fan_out, fan_in), minval=-bound, maxval=bound),
                       jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)))

    def energy(x):
        h = x
        for k, (w, b) in enumerate(params):
            h = w @ h + b
            if k + 1 < len(params):
                h = jax.nn.silu(h)
        return h[0]

    return energy


def cases(suite, quick):
    counts = [256, 1024] if quick else [1024, 16384, 65536]
    out = []
    if suite in ("all", "langevin"):
        for name, energy, dim, h, work in [("ring8", ring8_energy, 2, 0.01, 6e6),
                                           ("gaussian10", gaussian10_energy, 10, 0.05, 8e6),
                                           ("double_well32", double_well_energy, 32, 0.005, 3e6)]:
            for sampler in ("ula", "mala"):
                out += [(name, energy, dim, sampler, c, None, h, work) for c in counts]
    if suite in ("all", "torchebm"):
        sizes = [(64, 8, 50)] if quick else [(64, 8, 50), (256, 32, 100), (1024, 128, 200)]
        for chains, dim, steps in sizes:
            for sampler in ("ula", "hmc"):
                out.append((f"double_well{dim}", double_well_energy, dim, sampler, chains, steps, 0.01, 0.0))
    if suite in ("all", "mlp"):
        dims = [2, 128, 128, 1]
        mlp_counts = [256] if quick else [1024, 16384, 65536]
        energy = mlp_energy(dims)
        out += [("mlp2x128x128x1", energy, 2, "mala", c, None, 0.001, 5e3 if quick else 2e5) for c in mlp_counts]
    return out


STEP_SIZES = {"ring8": 0.01, "gaussian10": 0.05, "double_well": 0.01, "mlp": 0.001}


def parse_cases(text):
    """`--cases`: NAME:SAMPLER:CHAINS:STEPS items, comma-separated, as case tuples."""
    out = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 4:
            raise SystemExit(f"--cases {item!r}: expected NAME:SAMPLER:CHAINS:STEPS")
        name, sampler, chains, steps = parts
        if sampler not in ("ula", "mala", "hmc"):
            raise SystemExit(f"--cases {item!r}: the sampler is ula, mala or hmc")
        try:
            chains, steps = int(chains), int(steps)
        except ValueError:
            raise SystemExit(f"--cases {item!r}: CHAINS and STEPS are integers") from None
        if chains < 1 or steps < 1:
            raise SystemExit(f"--cases {item!r}: CHAINS and STEPS must be at least 1")
        if name == "ring8":
            energy, dim, h = ring8_energy, 2, STEP_SIZES["ring8"]
        elif name == "gaussian10":
            energy, dim, h = gaussian10_energy, 10, STEP_SIZES["gaussian10"]
        elif name.startswith("double_well") and name[len("double_well"):].isdigit():
            energy, dim, h = double_well_energy, int(name[len("double_well"):]), STEP_SIZES["double_well"]
        elif name.startswith("mlp"):
            try:
                dims = [int(d) for d in name[3:].split("x")]
            except ValueError:
                raise SystemExit(f"--cases {item!r}: an MLP is mlpD0xD1x...x1") from None
            energy, dim, h = mlp_energy(dims), dims[0], STEP_SIZES["mlp"]
        else:
            raise SystemExit(f"--cases {item!r}: NAME is ring8, gaussian10, double_wellD or mlpD0x...x1")
        out.append((name, energy, dim, sampler, chains, steps, h, 0.0))
    return out


def default_steps(work, chains, quick):
    lo, hi = (2.0, 50.0) if quick else (5.0, 10000.0)
    if quick:
        work = min(work, 5e4)
    return int(round(min(max(work / chains, lo), hi)))


def make_run(energy, dim, sampler, h, chains, blackjax_kernel):
    """A jitted function (key, x [chains, dim], steps) -> x after `steps` steps."""
    logdensity = lambda x: -energy(x)  # noqa: E731
    grad_e = jax.vmap(jax.grad(energy))
    value_grad = jax.vmap(jax.value_and_grad(energy))
    if sampler != "ula" and not blackjax_kernel:
        def init(x):
            e, g = value_grad(x)
            return x, e, g

        def step(carry, _):
            key, (x, e, g) = carry
            key, k_noise, k_accept = jax.random.split(key, 3)
            if sampler == "mala":
                y = x - h * g + jnp.sqrt(2 * h) * jax.random.normal(k_noise, x.shape)
                ey, gy = value_grad(y)
                forward = jnp.sum((y - x + h * g) ** 2, axis=1)
                backward = jnp.sum((x - y + h * gy) ** 2, axis=1)
                log_alpha = e - ey + (forward - backward) / (4 * h)
            else:  # hmc, 10 leapfrog steps, unit mass
                p0 = jax.random.normal(k_noise, x.shape)

                def leap(_, state):
                    q, p, _e, gq = state
                    p = p - 0.5 * h * gq
                    q = q + h * p
                    eq, gq = value_grad(q)
                    return q, p - 0.5 * h * gq, eq, gq

                y, p1, ey, gy = jax.lax.fori_loop(0, 10, leap, (x, p0, e, g))
                log_alpha = e - ey + 0.5 * jnp.sum(p0 * p0, axis=1) - 0.5 * jnp.sum(p1 * p1, axis=1)
            accept = jnp.log(jax.random.uniform(k_accept, e.shape)) <= log_alpha
            keep = accept[:, None]
            return (key, (jnp.where(keep, y, x), jnp.where(accept, ey, e), jnp.where(keep, gy, g))), None
    elif sampler == "ula":
        def step(carry, _):
            key, x = carry
            key, sub = jax.random.split(key)
            x = x - h * grad_e(x) + jnp.sqrt(2 * h) * jax.random.normal(sub, x.shape)
            return (key, x), None

        def init(x):
            return x
    else:
        if sampler == "mala":
            kernel = blackjax.mala(logdensity, h)
        else:
            kernel = blackjax.hmc(logdensity, step_size=h, inverse_mass_matrix=jnp.ones(dim),
                                  num_integration_steps=10)
        init = jax.vmap(kernel.init)
        vstep = jax.vmap(kernel.step)

        def step(carry, _):
            key, state = carry
            key, sub = jax.random.split(key)
            state, _info = vstep(jax.random.split(sub, chains), state)
            return (key, state), None

    def run(key, x, steps):
        (key, state), _ = jax.lax.scan(step, (key, init(x)), None, length=steps)
        return state

    return jax.jit(run, static_argnums=2)


def position(state):
    if isinstance(state, tuple):
        return state[0]
    return state if isinstance(state, jax.Array) else state.position


def time_case(case, quick, blackjax_kernel):
    name, energy, dim, sampler, chains, steps, h, work = case
    steps = steps or default_steps(work, chains, quick)
    warm = max(2, -(-steps // 10))
    run = make_run(energy, dim, sampler, h, chains, blackjax_kernel)
    key = jax.random.PRNGKey(SEED)
    x = jax.random.normal(key, (chains, dim))
    x = position(run(key, x, warm)).block_until_ready()

    def timed(steps):
        position(run(key, x, steps)).block_until_ready()  # compiles for `steps`: a warm-up of this shape
        start = time.perf_counter()
        position(run(jax.random.PRNGKey(SEED + 1), x, steps)).block_until_ready()
        return time.perf_counter() - start

    seconds = timed(steps)
    while seconds < MIN_SECONDS and steps < 1_000_000:
        steps = min(1_000_000, max(steps + 1, math.ceil(steps * 1.2 * MIN_SECONDS / max(seconds, 1e-4))))
        seconds = timed(steps)
    executor = "blackjax" if blackjax_kernel else "jax"
    return {"executor": f"{executor} {jax.default_backend()}", "energy": name, "dim": dim, "sampler": sampler,
            "chains": chains, "steps": steps, "seconds": seconds, "chain_steps_per_s": chains * steps / seconds}


def ebm_rows(ebm, suite, quick):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ebm.csv")
        cmd = [ebm, "bench", "--backend", "cpu", "--suite", suite, "--csv", path] + (["--quick"] if quick else [])
        if MIN_SECONDS > 0:
            cmd += ["--min-seconds", str(MIN_SECONDS)]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("dim", "chains", "steps"):
            r[k] = int(r[k])
        for k in ("seconds", "chain_steps_per_s"):
            r[k] = float(r[k])
        r["executor"] = "ebm cpu"
    return rows


def human(v):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def main():
    suites = ["langevin", "torchebm", "mlp"] if ARGS.suite == "all" else [ARGS.suite]
    use_blackjax = blackjax is not None and not ARGS.no_blackjax
    bj = f"blackjax {blackjax.__version__}" if blackjax is not None else "blackjax not installed"
    print(f"jax {jax.__version__}, {bj}, device {jax.devices()[0]}, {os.cpu_count()} CPUs", file=sys.stderr)
    if blackjax is None:
        print("note: blackjax is not installed: the blackjax rows are left out", file=sys.stderr)
    if ARGS.cases:
        if ARGS.ebm:
            raise SystemExit("--cases and --ebm: give one (--ebm joins the rows of a suite)")
        suites = ["cases"]
    table = []
    for suite in suites:
        ours = {}
        if ARGS.ebm:
            for r in ebm_rows(ARGS.ebm, suite, ARGS.quick):
                ours[(r["energy"], r["sampler"], r["chains"])] = r
        for case in (parse_cases(ARGS.cases) if suite == "cases" else cases(suite, ARGS.quick)):
            peers = []
            for kernel in ([False, True] if case[3] != "ula" and use_blackjax else [False]):
                try:
                    peers.append(time_case(case, ARGS.quick, kernel))
                except Exception as e:  # one case failing (out of memory, say) leaves the others
                    executor = "blackjax" if kernel else "jax"
                    print(f"  {executor} {case[0]} {case[3]} {case[4]} chains: failed: {type(e).__name__}: {e}",
                          file=sys.stderr)
                    failed.append(dict(executor=f"{executor} {jax.default_backend()}", energy=case[0], dim=case[2],
                                       sampler=case[3], chains=case[4], steps=case[5] or "", seconds="",
                                       chain_steps_per_s="", ratio="", error=f"{type(e).__name__}: {e}"[:300]))
            for r in peers:
                print(f"  {r['executor']} {r['energy']} {r['sampler']} {r['chains']} chains: "
                      f"{r['steps']} steps in {r['seconds']:.3f} s ({human(r['chain_steps_per_s'])}/s)", file=sys.stderr)
            if not peers:
                write_csv(table, failed)
                continue
            best = max(r["chain_steps_per_s"] for r in peers)
            mine = ours.get((peers[0]["energy"], peers[0]["sampler"], peers[0]["chains"]))
            if mine:
                table.append(dict(mine, ratio=f"{mine['chain_steps_per_s'] / best:.2f}"))
            table += [dict(r, ratio="") for r in peers]
            write_csv(table, failed)  # after every case, so a run stopped half-way keeps its rows
    heads = ["executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain-steps/s", "ours/best peer"]
    cells = [[r["executor"], r["energy"], str(r["dim"]), r["sampler"], str(r["chains"]), str(r["steps"]),
              f"{r['seconds']:.3f}", human(r["chain_steps_per_s"]), r["ratio"]] for r in table]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    write_csv(table, failed)
    if failed:
        print(f"note: {len(failed)} case(s) failed (see above)")
        sys.exit(1)


failed = []
CSV_COLUMNS = ["executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain_steps_per_s", "ratio", "error"]


def write_csv(table, failed):
    """--csv: the rows so far (failed cases with their error and no timing)."""
    if ARGS.csv:
        with open(ARGS.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(table + failed)


if __name__ == "__main__":
    main()
