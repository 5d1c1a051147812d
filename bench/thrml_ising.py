#!/usr/bin/env python3
"""Extropic's THRML (JAX block Gibbs) on Ising workloads, for side-by-side comparison with `ebm sample`.

Two workloads, both J = 1, h = 0, inverse temperature beta, hot (uniformly random) starts, `chains`
independent chains batched with jax.vmap over one jitted program, `sweeps` full sweeps each (a sweep
updates every colour class once, in order):
  - a periodic L x L square lattice, checkerboard blocks (2 colours);
  - a sparse random graph on N vertices (Erdos-Renyi with mean degree 4 by default, seeded, self-loops
    and repeated pairs dropped), blocks from a greedy colouring in vertex order (the colouring
    `ebm` uses). --edges FILE writes its edge list as `i,j` lines for `ebm ... ising:graph:FILE`.
The timed call excludes building the program and JIT compilation (reported separately). Prints spin
updates/s = chains * sites * sweeps / seconds, and the final states' mean energy per site
(-sum_<ij> s_i s_j / sites, beta not included) and mean |m| over the chains; at beta = 0.3 the
infinite square lattice has energy per site -0.7045 (Onsager) and |m| -> 0.

    python3 -m venv /tmp/thrml-venv && /tmp/thrml-venv/bin/pip install thrml   # pulls jax[cpu], equinox
    JAX_PLATFORMS=cpu python3 bench/thrml_ising.py --lattice 256 --chains 16 --sweeps 200
    ebm sample --energy ising:square:256,beta=0.3 --sampler gibbs --chains 16 --steps 200 --thin 200 \
        --warmup 0 --backend cpu
    JAX_PLATFORMS=cpu python3 bench/thrml_ising.py --lattice 0 --graph 65536 --chains 16 --sweeps 200 \
        --edges /tmp/er65536.csv
    ebm sample --energy ising:graph:/tmp/er65536.csv,n=65536,beta=0.3 --sampler gibbs --chains 16 \
        --steps 200 --thin 200 --warmup 0 --backend cpu
"""
import argparse, time

import jax
import jax.numpy as jnp
import numpy as np
import equinox as eqx
import thrml
from thrml import Block, SamplingSchedule, SpinNode, sample_states
from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init


def square_edges(L):
    """Each site's right and down neighbour, periodic: 2 L^2 edges, sites numbered row-major."""
    i = np.arange(L * L)
    r, c = i // L, i % L
    right = r * L + (c + 1) % L
    down = ((r + 1) % L) * L + c
    return np.concatenate([np.stack([i, right], 1), np.stack([i, down], 1)])


def random_edges(n, degree, seed):
    """Erdos-Renyi-like: n * degree / 2 uniform pairs, self-loops and duplicates dropped."""
    rng = np.random.default_rng(seed)
    m = int(n * degree / 2)
    e = rng.integers(0, n, size=(m, 2))
    e = e[e[:, 0] != e[:, 1]]
    e = np.unique(np.sort(e, 1), axis=0)
    return e


def greedy_colouring(n, edges):
    """colour[i] = the smallest colour none of i's earlier neighbours has (vertex order)."""
    nbrs = [[] for _ in range(n)]
    for a, b in edges.tolist():
        nbrs[a].append(b)
        nbrs[b].append(a)
    colour = [-1] * n
    for i in range(n):
        taken = {colour[j] for j in nbrs[i] if j < i}
        c = 0
        while c in taken:
            c += 1
        colour[i] = c
    return np.array(colour)


def run(name, n, edges, colour, beta, chains, sweeps, seed):
    t0 = time.perf_counter()
    nodes = [SpinNode() for _ in range(n)]
    ebm_edges = [(nodes[a], nodes[b]) for a, b in edges.tolist()]
    model = IsingEBM(nodes, ebm_edges, jnp.zeros((n,), jnp.float32), jnp.ones((len(edges),), jnp.float32),
                     jnp.array(beta, jnp.float32))
    blocks = [Block([nodes[i] for i in np.flatnonzero(colour == c)]) for c in range(colour.max() + 1)]
    program = IsingSamplingProgram(model, blocks, clamped_blocks=[])
    build = time.perf_counter() - t0

    # `sweeps` sweeps, then one observation of every node (in site order).
    schedule = SamplingSchedule(n_warmup=sweeps, n_samples=1, steps_per_sample=1)
    params, static = eqx.partition(program, eqx.is_array)
    everything = [Block(nodes)]

    def chains_fn(params, keys, init):
        prog = eqx.combine(params, static)
        one = lambda k, s: sample_states(k, prog, schedule, s, [], everything)[0][0]
        return jax.vmap(one)(keys, init)

    key = jax.random.key(seed)
    k_init, k_run = jax.random.split(key)
    init = hinton_init(k_init, model, blocks, (chains,))  # h = 0: each spin up with probability 1/2
    keys = jax.random.split(k_run, chains)
    t0 = time.perf_counter()
    compiled = jax.jit(chains_fn).lower(params, keys, init).compile()
    jit = time.perf_counter() - t0

    t0 = time.perf_counter()
    states = compiled(params, keys, init)
    states.block_until_ready()
    seconds = time.perf_counter() - t0

    s = 2 * np.asarray(states).astype(np.int8) - 1  # (chains, n) in {-1, +1}
    e = -(s[:, edges[:, 0]].astype(np.int32) * s[:, edges[:, 1]]).sum(1) / n
    m = np.abs(s.astype(np.int64).sum(1)) / n
    rate = chains * n * sweeps / seconds
    print(f"thrml: {name} {chains} chains x {sweeps} sweeps: {seconds:.3f} s, {rate:.3e} spin updates/s, "
          f"e/site {e.mean():.4f}, |m| {m.mean():.4f}   "
          f"(build {build:.1f} s, jit {jit:.1f} s, {colour.max() + 1} colours, {len(edges)} edges)", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lattice", type=int, default=256, help="side L of the periodic square lattice (0 = skip)")
    p.add_argument("--graph", type=int, default=0, help="vertices N of the random graph (0 = skip)")
    p.add_argument("--degree", type=float, default=4.0, help="mean degree of the random graph")
    p.add_argument("--edges", default=None, help="write the random graph's edge list here (i,j lines)")
    p.add_argument("--beta", type=float, default=0.3)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--sweeps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(f"thrml {thrml.__version__}, jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"float32 couplings, beta = {a.beta}", flush=True)
    if a.lattice:
        L = a.lattice
        if L % 2:
            raise SystemExit("--lattice needs an even side for a checkerboard")
        i = np.arange(L * L)
        run(f"square {L}x{L}", L * L, square_edges(L), (i // L + i % L) % 2, a.beta, a.chains, a.sweeps, a.seed)
    if a.graph:
        edges = random_edges(a.graph, a.degree, a.seed)
        if a.edges:
            np.savetxt(a.edges, edges, fmt="%d", delimiter=",")
        colour = greedy_colouring(a.graph, edges)
        run(f"graph N={a.graph} (ER, mean degree {a.degree:g})", a.graph, edges, colour, a.beta, a.chains,
            a.sweeps, a.seed)


if __name__ == "__main__":
    main()
