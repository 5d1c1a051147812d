#!/usr/bin/env python3
"""The table and the JSON of a device run (bench/device/run.sh run): reads the run's work folder
(raw/ logs and CSVs, steps.tsv, notes.txt) and writes OUT/device.md and OUT/device.json.

Exit status: 1 when the selftest failed (or timed out) or no workload was measured at all, else 0.
Standard library only (the device's python3 and a bare CI machine's alike).
"""
import argparse
import csv
import datetime
import glob
import json
import os
import platform
import re
import sys

# The table's executor columns, in order, and which workload families each one implements.
COLUMNS = ["ebm", "torch", "torch.compile", "jax", "blackjax", "sklearn", "thrml"]
PEERS = ["torch", "jax", "blackjax", "sklearn", "thrml"]
SAMPLER_FAMILIES = ("double_well", "ring8", "mlp")
# Discrete models (ebm bench --suite discrete; THRML runs the Ising lattices and the graph).
DISCRETE_FAMILIES = ("ising", "potts", "graph")
UNITS = {"sampler": "chain-steps/s", "train": "steps/s", "rbm": "rows/s", "ais": "AIS runs/s", "particles": "frames/s",
         "discrete": "site updates/s", "dbm": "rows/s"}
# Table order of the workload families.
ORDER = ["double_well", "ring8", "mlp", "uva-convebm", "cd", "jem", "dsm", "rbm", "ais", "particles", "ising", "graph",
         "potts", "dbm"]


def si(x):
    """`12.3M`-style, three significant digits (ebm bench's `si`)."""
    if x is None:
        return "-"
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale * 0.9995:
            v = x / scale
            break
    else:
        v, unit = x, ""
    digits = 0 if v >= 99.95 else 1 if v >= 9.995 else 2
    return f"{v:.{digits}f}{unit}"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().replace("\r", "\n")
    except OSError:
        return None


def read_csv(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x else None  # NaN -> None


# --- workload keys ---------------------------------------------------------------------------------

def family(workload):
    for f in ORDER:
        if workload.startswith(f):
            return f
    return workload


def label(workload):
    """A readable workload name for the table."""
    m = re.match(r"double_well(\d+) (\w+)$", workload)
    if m:
        return f"double well d={m.group(1)}, {m.group(2)}"
    m = re.match(r"mlp([\dx]+) (\w+)$", workload)
    if m:
        return f"MLP {m.group(1).replace('x', '-')}, {m.group(2)}"
    m = re.match(r"(ising|potts)(\d+)(-tc)? ([\w-]+)$", workload)
    if m:
        name = "Ising" if m.group(1) == "ising" else "Potts q=3"
        at = " at T_c" if m.group(3) else ""
        return f"{name} {m.group(2)}x{m.group(2)}{at}, {m.group(4)}"
    m = re.match(r"graph(\d+) ([\w-]+)$", workload)
    if m:
        return f"Ising random graph N={m.group(1)}, {m.group(2)}"
    return {
        "ring8 MALA": "ring8, MALA",
        "uva-convebm ULA": "UvA ConvEBM, ULA",
        "uva-convebm MALA": "UvA ConvEBM, MALA",
        "cd": "UvA ConvEBM CD training",
        "jem": "JEM training (ConvEBM, 10 classes)",
        "dsm": "DSM training (ConvEBM, sigma 0.1)",
        "rbm": "RBM 784x500 PCD-1 epoch",
        "ais": "RBM 784x500 AIS",
        "particles": "particles (ring8 ULA + draw)",
        "dbm": "DBM PCD-1 epoch (mean field 10)",
    }.get(workload, workload)


def kind_of(workload):
    f = family(workload)
    if f in SAMPLER_FAMILIES or f == "uva-convebm":
        return "sampler"
    if f in ("cd", "jem", "dsm"):
        return "train"
    if f in DISCRETE_FAMILIES:
        return "discrete"
    return f


def implements(column, workload):
    """Whether a column has an implementation of this workload (else the cell reads '—')."""
    f = family(workload)
    if column == "ebm":
        return True
    if column == "thrml":
        return f in ("ising", "graph") and workload.endswith(" gibbs") and "-tc" not in workload
    if f in DISCRETE_FAMILIES or f == "dbm":
        return False
    if column in ("torch", "torch.compile"):
        return True
    if column == "jax":
        return f in SAMPLER_FAMILIES
    if column == "blackjax":
        return f in SAMPLER_FAMILIES and not workload.endswith("ULA")  # BlackJAX has no ULA kernel
    if column == "sklearn":
        return f == "rbm"
    return False


def peer_step(column, workload):
    """The step whose output holds this column's figure for the workload."""
    f = family(workload)
    if column == "thrml":
        return "peer.thrml." + workload.split()[0]
    if column in ("jax", "blackjax"):
        return "peer.jax"
    if column == "sklearn":
        return "peer.sklearn.rbm"
    prefix = "peer.torch" if column == "torch" else "peer.torch-compile"
    if f in SAMPLER_FAMILIES:
        return prefix + ".langevin"
    if f == "uva-convebm":
        return prefix + ".nn"
    return prefix + ".train"


def ebm_step(workload, key, steps):
    """The ebm step that measures this workload (for the cell of a failed or skipped step)."""
    f = family(workload)
    energy, _, sampler = workload.partition(" ")
    for name in steps:
        m = re.match(r"ebm\.sample\.([^.]+)\.(\w+)\.(\d+)\.(\d+)$", name)
        if m and m.group(1) == energy and m.group(2) == sampler.lower() and int(m.group(3)) == key:
            return name
    return {
        "double_well": "ebm.bench.torchebm", "ring8": "ebm.bench.langevin", "mlp": "ebm.bench.mlp",
        "uva-convebm": "ebm.bench.nn", "cd": "ebm.train.cd", "jem": "ebm.train.jem", "dsm": "ebm.train.dsm",
        "rbm": "ebm.rbm.pcd1", "ais": "ebm.rbm.ais", "ising": "ebm.bench.discrete", "graph": "ebm.bench.discrete",
        "potts": "ebm.bench.discrete", "dbm": "ebm.dbm.train",
    }.get(f, f"ebm.particles.{key}" if f == "particles" else "")


# --- parsers -----------------------------------------------------------------------------------------

class Rows:
    def __init__(self):
        self.rows = []

    def add(self, column, workload, key, figure, source, size=None, chains=None, steps=None, seconds=None,
            error=None, table=True, **extra):
        self.rows.append(dict(column=column, workload=workload, label=label(workload), key=key, figure=figure,
                              unit=UNITS.get(kind_of(workload), ""), size=size, chains=chains, steps=steps,
                              seconds=seconds, source=source, error=error, table=table,
                              **{k: v for k, v in extra.items() if v not in (None, "")}))


def parse_bench(rows, raw, suite):
    name = f"ebm.bench.{suite}"
    for r in read_csv(os.path.join(raw, f"{name}.csv")):
        energy, sampler = r.get("energy", ""), r.get("sampler", "").upper()
        workload = f"{energy} {sampler}"
        chains, steps = int(r["chains"]), int(r["steps"])
        # The table holds the workloads the peers run too; the others stay in the JSON.
        table = suite in ("torchebm", "mlp") or (suite == "langevin" and workload == "ring8 MALA")
        extra = {k: num(v) for k, v in r.items()
                 if k not in ("executor", "energy", "dim", "sampler", "chains", "steps", "seconds", "chain_steps_per_s")}
        rows.add("ebm", workload, chains, num(r.get("chain_steps_per_s")), name, chains=chains, steps=steps,
                 seconds=num(r.get("seconds")), table=table, executor=r.get("executor"), **extra)


def parse_bench_nn(rows, raw, kernels):
    name = "ebm.bench.nn"
    for r in read_csv(os.path.join(raw, f"{name}.csv")):
        case = r.get("case", "")
        if case in ("ULA", "MALA"):
            chains, steps = int(r["batch"]), int(num(r.get("reps")) or 0)
            rows.add("ebm", f"uva-convebm {case}", chains, num(r.get("chain_steps_per_s")), name, chains=chains,
                     steps=steps, seconds=(num(r.get("seconds_per_rep")) or 0) * steps, table=case == "ULA",
                     gflops=num(r.get("gflops")), dispatches_per_step=num(r.get("dispatches")))
        else:
            kernels.append({k: (num(v) if k not in ("executor", "case", "size") else v) for k, v in r.items()})


TIME_RE = re.compile(r"^time ([\d.]+) s, ([\d.eE+-]+) chain-steps/s", re.M)


def parse_samples(rows, raw, steps):
    """`ebm sample` pairs: NAME.base (BASE steps) and NAME (BASE + S steps)."""
    for name in steps:
        m = re.match(r"ebm\.sample\.([^.]+)\.(\w+)\.(\d+)\.(\d+)$", name)
        if not m:
            continue
        energy, sampler, chains, s = m.group(1), m.group(2).upper(), int(m.group(3)), int(m.group(4))
        long_log, base_log = read(os.path.join(raw, f"{name}.log")), read(os.path.join(raw, f"{name}.base.log"))
        t_long = TIME_RE.search(long_log or "")
        t_base = TIME_RE.search(base_log or "")
        if not t_long:
            continue
        t2 = float(t_long.group(1))
        if t_base and t2 > float(t_base.group(1)):
            seconds = t2 - float(t_base.group(1))
            figure, how = chains * s / seconds, "difference of two runs"
        else:
            seconds, figure = t2, float(t_long.group(2))
            how = "one run, start-up included"
        rows.add("ebm", f"{energy} {sampler}", chains, figure, name, chains=chains, steps=s, seconds=seconds,
                 method=f"ebm sample: {how}")


def parse_train(rows, raw, steps):
    for loss in ("cd", "jem", "dsm"):
        name = f"ebm.train.{loss}"
        if name not in steps or steps[name]["status"] != "ok":
            continue
        log = read(os.path.join(raw, f"{name}.log")) or ""
        cmd = steps[name]["command"]
        batch = re.search(r"--batch (\d+)", cmd)
        k = re.search(r"--langevin-steps (\d+)", cmd)
        batch = int(batch.group(1)) if batch else None
        k = int(k.group(1)) if k else {"cd": 60, "jem": 20}.get(loss)
        size = f"batch {batch}" + (f", K={k}" if loss != "dsm" and k else "")
        figure, seconds, how, n = None, None, None, None
        # metrics.csv: one wall-clock time per chunk of steps; the rate between the first chunk's
        # end and the last's leaves pipeline creation and the final figure out.
        walls = []
        for r in read_csv(os.path.join(raw, f"{name}.metrics.csv")):
            st, w = num(r.get("step")), num(r.get("wall_seconds"))
            if st is not None and w is not None:
                walls.append((int(st), w))
        chunks = []
        for st, w in walls:
            if chunks and chunks[-1][1] == w:
                chunks[-1] = (st, w)
            else:
                chunks.append((st, w))
        if len(chunks) >= 2 and chunks[-1][1] > chunks[0][1]:
            n = chunks[-1][0] - chunks[0][0]
            seconds = chunks[-1][1] - chunks[0][1]
            figure, how = n / seconds, f"steps {chunks[0][0] + 1}..{chunks[-1][0]} (metrics.csv)"
        else:
            m = re.search(r"^(\d+) steps in ([\d.]+) s: ([\d.]+) steps/s", log, re.M)
            if m:
                n, seconds, figure = int(m.group(1)), float(m.group(2)), float(m.group(3))
                how = "all steps, start-up and the final figure included"
        if figure:
            rows.add("ebm", loss, batch, figure, name, size=size, steps=n, seconds=seconds, method=how)


def parse_rbm(rows, raw, steps):
    log = read(os.path.join(raw, "ebm.rbm.pcd1.log")) or ""
    m_rows = re.search(r"on (\d+) rows", log)
    m_sec = re.search(r"^epoch 1: ([\d.]+)s", log, re.M)
    if m_rows and m_sec and float(m_sec.group(1)) > 0:
        n, sec = int(m_rows.group(1)), float(m_sec.group(1))
        rows.add("ebm", "rbm", n, n / sec, "ebm.rbm.pcd1", size=f"{n} rows, batch 100", seconds=sec)
    log = read(os.path.join(raw, "ebm.rbm.ais.log")) or ""
    estimates = re.findall(r"^AIS from the .*\((\d+) runs x (\d+) betas\)", log, re.M)
    m_sec = re.search(r"\(([\d.]+)s for log Z\)", log)
    if estimates and m_sec and float(m_sec.group(1)) > 0:
        runs, betas = int(estimates[0][0]), int(estimates[0][1])
        sec = float(m_sec.group(1))
        rows.add("ebm", "ais", f"{runs}x{betas}", len(estimates) * runs / sec, "ebm.rbm.ais",
                 size=f"{runs} runs x {betas} betas x {len(estimates)} estimates", seconds=sec)


def discrete_workload(model, sampler):
    """`ebm bench --suite discrete`'s model and sampler as a table workload (`ising256 gibbs`)."""
    m = re.match(r"(ising|potts:3):square:(\d+),beta=([\d.]+)$", model)
    if m:
        tc = "-tc" if abs(float(m.group(3)) - 0.4406868) < 1e-6 else ""
        return f"{m.group(1).split(':')[0]}{m.group(2)}{tc} {sampler}"
    m = re.match(r"random graph n=(\d+)", model)
    if m:
        return f"graph{m.group(1)} {sampler}"
    return None


def parse_discrete(rows, raw):
    log = read(os.path.join(raw, "ebm.bench.discrete.log")) or ""
    for line in log.splitlines():
        # exec, model, sites, sampler, chains, sweeps, seconds, rate, GFLOP/s, GB/s, % roof, bound
        m = re.match(r"gpu\s+(.+?)\s+(\d+)\s+([\w-]+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+\S+"
                     r"\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", line)
        if not m:
            continue
        workload = discrete_workload(m.group(1), m.group(3))
        sites, chains, sweeps, sec = int(m.group(2)), int(m.group(4)), int(m.group(5)), float(m.group(6))
        roof = num(m.group(9).rstrip("%"))
        if workload and sec > 0:
            rows.add("ebm", workload, chains, chains * sites * sweeps / sec, "ebm.bench.discrete", chains=chains,
                     size=f"{chains} chains x {sweeps} sweeps", steps=sweeps, seconds=sec, model=m.group(1),
                     gflops=num(m.group(7)), gbytes_per_s=num(m.group(8)),
                     roof_fraction=roof / 100 if roof is not None else None,
                     bound=m.group(10) if m.group(10) != "-" else None)
    for path in sorted(glob.glob(os.path.join(raw, "peer.thrml.*.log"))):
        source = os.path.basename(path)[:-4]
        text = read(path) or ""
        for m in re.finditer(r"^thrml: (square (\d+)x\d+|graph N=(\d+)) .*?(\d+) chains x (\d+) sweeps: ([\d.]+) s, "
                             r"([\d.e+-]+) spin updates/s", text, re.M):
            workload = f"ising{m.group(2)} gibbs" if m.group(2) else f"graph{m.group(3)} gibbs"
            chains, sweeps = int(m.group(4)), int(m.group(5))
            rows.add("thrml", workload, chains, float(m.group(7)), source, chains=chains,
                     size=f"{chains} chains x {sweeps} sweeps", steps=sweeps, seconds=float(m.group(6)))
    log = read(os.path.join(raw, "ebm.dbm.train.log")) or ""
    m_rows = re.search(r"^dbm ([\d-]+) on (\d+) rows", log, re.M)
    m_sec = re.search(r"^DBM epoch 1: ([\d.]+)s", log, re.M)
    if m_rows and m_sec and float(m_sec.group(1)) > 0:
        n, sec = int(m_rows.group(2)), float(m_sec.group(1))
        rows.add("ebm", "dbm", n, n / sec, "ebm.dbm.train", size=f"{m_rows.group(1)}, {n} rows, batch 100", seconds=sec)


def parse_particles(rows, raw, steps):
    for name in steps:
        m = re.match(r"ebm\.particles\.(\d+)$", name)
        if not m:
            continue
        log = read(os.path.join(raw, f"{name}.log")) or ""
        p = re.search(r"(\d+) frames of (\d+) chains, (\d+) ULA steps each: ([\d.]+) frames/s", log)
        size = re.search(r"--size (\d+)", steps[name]["command"])
        if p:
            chains = int(p.group(2))
            rows.add("ebm", "particles", chains, float(p.group(4)), name, chains=chains,
                     size=f"{chains} chains, {p.group(3)} ULA steps/frame, {size.group(1) if size else '?'} px",
                     frames=int(p.group(1)))


def expect_rows(rows, steps):
    """A row (no figure) for each ebm step of a known workload that measured nothing, so that the
    table shows the step's fate (failed, timeout, skipped) instead of leaving the workload out."""
    have = {r["source"] for r in rows.rows}
    for name, s in steps.items():
        if name in have or name.endswith(".base"):
            continue
        m = re.match(r"ebm\.sample\.([^.]+)\.(\w+)\.(\d+)\.(\d+)$", name)
        if m:
            rows.add("ebm", f"{m.group(1)} {m.group(2).upper()}", int(m.group(3)), None, name, chains=int(m.group(3)),
                     steps=int(m.group(4)))
            continue
        m = re.match(r"ebm\.particles\.(\d+)$", name)
        if m:
            rows.add("ebm", "particles", int(m.group(1)), None, name, chains=int(m.group(1)),
                     size=f"{m.group(1)} chains")
            continue
        m = re.match(r"ebm\.train\.(cd|jem|dsm)$", name)
        if m:
            batch = re.search(r"--batch (\d+)", s["command"])
            rows.add("ebm", m.group(1), int(batch.group(1)) if batch else None, None, name,
                     size=f"batch {batch.group(1)}" if batch else None)


def peer_column(executor):
    e = executor.lower()
    if e.startswith("blackjax"):
        return "blackjax"
    if e.startswith("jax"):
        return "jax"
    if e.startswith("torch"):
        return "torch.compile" if "compile" in e else "torch"
    return None


def parse_peers(rows, raw):
    for path in [os.path.join(raw, "peer.jax.csv")] + sorted(glob.glob(os.path.join(raw, "peer.torch*.langevin.csv"))):
        source = os.path.basename(path)[:-4]
        for r in read_csv(path):
            col = peer_column(r.get("executor", ""))
            if not col:
                continue
            chains = int(r["chains"])
            rows.add(col, f"{r['energy']} {r['sampler'].upper()}", chains, num(r.get("chain_steps_per_s")), source,
                     chains=chains, steps=int(num(r.get("steps")) or 0), seconds=num(r.get("seconds")),
                     error=r.get("error") or None, executor=r.get("executor"), compiled=r.get("compiled"))
    for path in sorted(glob.glob(os.path.join(raw, "peer.torch*.nn.csv"))):
        source = os.path.basename(path)[:-4]
        for r in read_csv(path):
            col = peer_column(r.get("executor", ""))
            wl = r.get("workload", "").split()
            if not col or len(wl) != 2:
                continue
            chains = int(r["chains"])
            workload = f"{wl[0]} {wl[1].upper()}"
            rows.add(col, workload, chains, num(r.get("chain_steps_per_s")), source, chains=chains,
                     steps=int(num(r.get("steps")) or 0), seconds=num(r.get("seconds")), error=r.get("error") or None,
                     table=workload != "uva-convebm MALA", executor=r.get("executor"), gflops=num(r.get("gflops")),
                     compiled=r.get("compiled"))
    for path in sorted(glob.glob(os.path.join(raw, "peer.torch*.train.csv"))):
        source = os.path.basename(path)[:-4]
        for r in read_csv(path):
            col = peer_column(r.get("executor", ""))
            wl, size = r.get("workload", ""), r.get("size", "")
            if not col:
                continue
            key = None
            if wl in ("cd", "jem", "dsm"):
                m = re.match(r"batch (\d+)", size)
                key = int(m.group(1)) if m else None
            elif wl == "rbm":
                m = re.search(r"(\d+) rows", size)
                key = int(m.group(1)) if m else None
            elif wl == "ais":
                m = re.search(r"(\d+) runs x (\d+) betas", size)
                key = f"{m.group(1)}x{m.group(2)}" if m else None
            elif wl == "particles":
                m = re.match(r"(\d+) chains", size)
                key = int(m.group(1)) if m else None
            rows.add(col, wl, key, num(r.get("figure")), source, size=size, seconds=num(r.get("seconds")),
                     error=r.get("error") or None, executor=r.get("executor"))
    log = read(os.path.join(raw, "peer.sklearn.rbm.log")) or ""
    m = re.search(r"^epoch 1: ([\d.]+)s \((\d+) rows", log, re.M)
    if m and float(m.group(1)) > 0:
        n, sec = int(m.group(2)), float(m.group(1))
        rows.add("sklearn", "rbm", n, n / sec, "peer.sklearn.rbm", size=f"{n} rows, batch 100", seconds=sec,
                 executor="sklearn BernoulliRBM (cpu)")


# --- the table -----------------------------------------------------------------------------------------

def sort_key(workload, key):
    f = family(workload)
    k = key if isinstance(key, (int, float)) else 0
    return (ORDER.index(f) if f in ORDER else len(ORDER), workload, k)


def build_table(rows, steps, peers):
    measured = [r for r in rows if r["table"]]
    keys = {}
    for r in measured:
        keys.setdefault((r["workload"], r["key"]), []).append(r)
    table = []
    for (workload, key) in sorted(keys, key=lambda wk: sort_key(*wk)):
        group = keys[(workload, key)]
        by_col = {}
        for r in group:
            if r["figure"] is not None and (r["column"] not in by_col or by_col[r["column"]]["figure"] is None):
                by_col[r["column"]] = r
            elif r["column"] not in by_col:
                by_col[r["column"]] = r
        ebm = by_col.get("ebm")
        first = ebm or group[0]
        if kind_of(workload) == "sampler":
            st = first.get("steps")
            size = f"{key} chains" + (f" x {st} steps" if st else "")
        else:
            size = first.get("size") or (str(key) if key is not None else "-")
        cells, best = {}, None
        for col in COLUMNS:
            r = by_col.get(col)
            if r is not None and r["figure"] is not None:
                cells[col] = si(r["figure"])
                if col != "ebm" and (best is None or r["figure"] > best[1]):
                    best = (col, r["figure"])
                continue
            cells[col] = missing_cell(col, workload, key, r, steps, peers)
        ratio = "-"
        if ebm is not None and ebm["figure"] is not None and best is not None:
            ratio = f"{ebm['figure'] / best[1]:.3g}x {best[0]}"
        table.append(dict(workload=workload, label=label(workload), size=size, unit=UNITS.get(kind_of(workload), ""),
                          cells=cells, ratio=ratio))
    return table


def missing_cell(col, workload, key, row, steps, peers):
    if not implements(col, workload):
        return "—"
    lib = {"torch": "torch", "torch.compile": "torch", "jax": "jax", "blackjax": "blackjax", "sklearn": "sklearn",
           "thrml": "thrml"}.get(col)
    if lib and peers.get(lib, {}).get("status") != "installed":
        return "not installed"
    if row is not None and row.get("error"):
        return "failed"
    name = ebm_step(workload, key, steps) if col == "ebm" else peer_step(col, workload)
    s = steps.get(name)
    if s is None:
        return "not run"
    if s["status"] == "ok":
        return "size not run"  # the step ran other sizes (a dry run keeps one case per energy)
    if s["status"] == "failed":
        return f"failed (rc {s['exit_code']})"
    if s["status"] == "timeout":
        return "timeout"
    if s["status"].startswith("not in this mode"):
        return "not in this mode"
    return {"skipped: out of time": "skipped (time)", "skipped: no GPU adapter": "no adapter",
            "skipped: no MNIST": "no MNIST"}.get(s["status"], s["status"])


def markdown(doc, table):
    a = doc["adapter"]
    lines = [f"# ebm device run: {a.get('name') or 'no GPU adapter'} ({doc['mode']})", ""]
    peers = doc["peers"]
    peer_text = ", ".join(
        f"{k} {v.get('version')}" if v.get("status") == "installed" else f"{k} not installed"
        for k, v in peers.items() if k in PEERS)
    lines.append(f"{doc['date']} · `{doc['command']}` · {doc['wall_s']:.0f} s of a {doc['budget_s']} s budget · "
                 f"{doc.get('ebm_version') or 'ebm ?'} on {a.get('name') or '-'} (driver {a.get('driver') or '-'}) · "
                 f"peers on {doc['peer_device']}: {peer_text or 'none'} · selftest: {doc['selftest']['status']}")
    if a.get("software"):
        lines.append("")
        lines.append("The ebm column ran on a software adapter and the peers on the CPU: a dry run of the script, "
                     "whose figures say nothing about a GPU.")
    lines.append("")
    head = ["workload", "size", "unit", "ebm (gpu)", "torch", "torch.compile", "jax", "blackjax", "sklearn (cpu)",
            "thrml", "ebm / best peer"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 7 + ["---"]) + "|")
    for t in table:
        lines.append("| " + " | ".join([t["label"], t["size"], t["unit"]] + [t["cells"][c] for c in COLUMNS] + [t["ratio"]]) + " |")
    if not table:
        lines.append("| (nothing measured) |  |  |  |  |  |  |  |  |  |  |")
    lines.append("")
    counts = {}
    for s in doc["steps"]:
        counts.setdefault(s["status"].split(":")[0], []).append(s)
    summary = ", ".join(f"{len(v)} {k}" for k, v in sorted(counts.items()))
    bad = [f"{s['name']} ({s['status']}, rc {s['exit_code']})" for s in doc["steps"] if s["status"] in ("failed", "timeout")]
    late = [s["name"] for s in doc["steps"] if s["status"] == "skipped: out of time"]
    if late:
        bad.append(f"{len(late)} step(s) skipped for time, from {late[0]} on")
    lines.append(f"Steps: {summary}." + (f" Not ok: {'; '.join(bad)}." if bad else "")
                 + " Cells: a figure; '—' no such implementation; 'not installed' the library is missing; "
                 "'failed'/'timeout'/'skipped' the step's fate; 'size not run' the step ran other sizes "
                 "(device.json has every step's exit code, time and log tail).")
    st = doc["selftest"]
    if st["status"] in ("failed", "timeout"):
        failing = [l for l in st.get("log", "").splitlines() if re.search(r"fail|error|mismatch", l, re.I)]
        lines.append(f"- selftest {st['status']} (exit {st['exit_code']}); its failing lines:" if failing else
                     f"- selftest {st['status']} (exit {st['exit_code']}); see device.json steps[ebm.selftest]")
        lines += [f"  - `{l.strip()[:200]}`" for l in failing[:20]]
    for n in doc["notes"]:
        lines.append(f"- {n}")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser()
    for name in ("work", "out", "mode", "selftest", "loader", "icd", "ebm", "command", "peer-device"):
        p.add_argument(f"--{name}", default="")
    p.add_argument("--budget", type=int, default=0)
    p.add_argument("--started", type=int, default=0)
    p.add_argument("--ended", type=int, default=0)
    a = p.parse_args()
    raw = os.path.join(a.work, "raw")

    steps = {}
    order = []
    for line in (read(os.path.join(a.work, "steps.tsv")) or "").splitlines():
        parts = line.split("\t")
        if len(parts) < 6:
            continue
        name, rc, secs, limit, status, cmd = parts[:6]
        log = read(os.path.join(raw, f"{name}.log"))
        tail = "\n".join(log.strip().splitlines()[-8:]) if log else ""
        steps[name] = dict(name=name, exit_code=int(rc) if rc.strip() else None, seconds=float(secs or 0),
                           timeout_s=int(float(limit or 0)), status=status, command=cmd.strip(), log_tail=tail[-1500:])
        order.append(name)

    try:
        peers = json.loads(read(os.path.join(raw, "peers.json")) or "{}")
    except ValueError:
        peers = {}
    for lib in PEERS:
        peers.setdefault(lib, {"status": "not installed", "detail": "the probe did not run"})

    info = read(os.path.join(raw, "ebm.info.log")) or ""
    adapter = {"name": None, "driver": None, "software": False, "info": info.strip()}
    m = re.search(r"^--backend gpu opens: (.*)$", info, re.M)
    if m and not m.group(1).startswith("none"):
        opened = m.group(1)
        adapter["software"] = opened.endswith(" (a software adapter)")
        opened = opened[: -len(" (a software adapter)")] if adapter["software"] else opened
        # "NAME (Backend, driver info)": the name is what comes before the last " (Backend, ".
        m2 = re.match(r"(.*?) \((Vulkan|Gl|Metal|Dx12|BrowserWebGpu), (.*)\)$", opened)
        if m2:
            adapter.update(name=m2.group(1), backend=m2.group(2), driver=m2.group(3))
        else:
            adapter["name"] = opened
    elif m:
        adapter["error"] = m.group(1)
    adapter["adapters"] = re.findall(r"^  (\S.*\[.*\] driver: .*)$", info, re.M)
    version = (read(os.path.join(raw, "ebm.version.log")) or "").strip() or None

    st_status = a.selftest or "skipped"
    st = steps.get("ebm.selftest")
    if st and st["exit_code"] is not None:
        st_status = {"ok": "passed", "failed": "failed", "timeout": "timeout"}.get(st["status"], st["status"])
    selftest = {"status": st_status, "exit_code": st["exit_code"] if st else None, "report": None,
                "log": (read(os.path.join(raw, "ebm.selftest.log")) or "")[-20000:]}
    try:
        selftest["report"] = json.loads(read(os.path.join(raw, "selftest.json")) or "null")
    except ValueError:
        selftest["report"] = "unreadable"

    rows, kernels = Rows(), []
    for suite in ("torchebm", "langevin", "mlp"):
        parse_bench(rows, raw, suite)
    parse_bench_nn(rows, raw, kernels)
    parse_samples(rows, raw, steps)
    parse_train(rows, raw, steps)
    parse_rbm(rows, raw, steps)
    parse_particles(rows, raw, steps)
    parse_discrete(rows, raw)
    parse_peers(rows, raw)
    expect_rows(rows, steps)

    table = build_table(rows.rows, steps, peers)
    started = datetime.datetime.fromtimestamp(a.started or 0, datetime.timezone.utc)
    notes = [n for n in (read(os.path.join(a.work, "notes.txt")) or "").splitlines() if n.strip()]
    doc = {
        "schema": 1,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": a.command,
        "mode": a.mode,
        "budget_s": a.budget,
        "wall_s": max(0, a.ended - a.started),
        "host": {"uname": " ".join(platform.uname()), "cpus": os.cpu_count()},
        "ebm_binary": a.ebm,
        "ebm_version": version,
        "adapter": adapter,
        "vulkan": {"loader": a.loader, "icd": a.icd or None},
        "selftest": selftest,
        "peer_device": a.peer_device,
        "peers": peers,
        "steps": [steps[n] for n in order],
        "rows": rows.rows,
        "table": table,
        "kernels": kernels,
        "notes": notes,
    }
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "device.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(a.out, "device.md"), "w") as f:
        f.write(markdown(doc, table))
    measured = any(r["figure"] is not None for r in rows.rows)
    if selftest["status"] in ("failed", "timeout"):
        print("report: the selftest failed", file=sys.stderr)
        return 1
    if not measured:
        print("report: nothing was measured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
