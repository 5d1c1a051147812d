"""Scale-out on Ray: sampling and scoring split by chain or point range, and data-parallel
training, each gathered in order so the result is the one-process result.

Chains depend only on (seed, chain index), so shards of a sampling run are computed anywhere
and joined bit for bit; each shard is a Ray task (``num_gpus=1`` each where the cluster has
GPUs), retried on a lost worker (a shard is a pure function of its range), and a shard that
still fails fails the call: a partial array is never returned.

Paths given to workers (spec files, ``net:FILE``, run dirs) must be readable where the workers
run: on one machine any path works; on a cluster use a shared filesystem.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np

try:
    import ray
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ebm_gpu.ray needs Ray: pip install 'ray>=2.9' (or pip install 'ebm-gpu[ray]')") from e

import ebm_gpu
from . import _native
from ._native import EbmError

__all__ = ["sample", "score", "rbm_eval", "train", "shard_bounds"]

# Test hook: "SHARD:MARKER" makes the worker of shard SHARD die (os._exit) the first time, when
# the MARKER file does not exist yet (it creates it), to check lost workers are handled.
_CRASH_ENV = "EBM_GPU_TEST_CRASH"


def shard_bounds(total: int, parts: int) -> List[int]:
    """Where ``parts`` shards of ``total`` items begin (and the end), as ``ebm sample --shard``
    splits chains: shard i holds items bounds[i] .. bounds[i+1] - 1."""
    if parts < 1 or parts > total:
        raise ValueError(f"workers must be between 1 and {total} (one item each at least), got {parts}")
    return [k * total // parts for k in range(parts + 1)]


def _portable(energy: Any) -> Any:
    """An energy that pickles to any worker: specs as text, networks as safetensors bytes."""
    energy = ebm_gpu._as_energy(energy)
    if isinstance(energy, str):
        return energy
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        path = os.path.join(tmp, "network.safetensors")
        energy.save(path)
        return ("safetensors", Path(path).read_bytes())


def _resolve(energy: Any, folder: str) -> Any:
    if isinstance(energy, tuple) and energy[0] == "safetensors":
        path = os.path.join(folder, "network.safetensors")
        Path(path).write_bytes(energy[1])
        return f"net:{path}"
    return energy


def _maybe_crash(shard: int) -> None:
    hook = os.environ.get(_CRASH_ENV)
    if hook:
        which, marker = hook.split(":", 1)
        if int(which) == shard and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)


def _sample_shard(energy: Any, shard: int, shards: int, options: dict) -> ebm_gpu.Samples:
    _maybe_crash(shard)
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        return ebm_gpu.sample(_resolve(energy, tmp), shard=(shard, shards), **options)


def _score_part(energy: Any, points: np.ndarray, options: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        return ebm_gpu.score(_resolve(energy, tmp), points, **options)


def _gather(refs: list, what: str, ranges: Sequence[tuple]) -> list:
    """Every result in order, or an EbmError naming the first range that failed."""
    out = []
    for ref, (first, end) in zip(refs, ranges):
        try:
            out.append(ray.get(ref))
        except ray.exceptions.RayError as err:
            raise EbmError(f"{what} {first}..{end - 1} failed on its Ray worker: {err}") from err
    return out


def _gpus(num_gpus: Optional[float]) -> float:
    if num_gpus is not None:
        return num_gpus
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _task(function: Any, num_gpus: Optional[float], max_retries: int, runtime_env: Optional[dict]) -> Any:
    settings = {"num_gpus": _gpus(num_gpus), "max_retries": max_retries}
    if runtime_env is not None:
        settings["runtime_env"] = runtime_env
    return ray.remote(**settings)(function)


def sample(energy: Any = "ring8", *, chains: int = 4096, workers: int = 2, num_gpus: Optional[float] = None,
           max_retries: int = 2, runtime_env: Optional[dict] = None, diagnostics: bool = False, trace: bool = False,
           **options: Any) -> ebm_gpu.Samples:
    """:func:`ebm_gpu.sample` with the chains split over ``workers`` Ray tasks; the states (and
    trace, and diagnostics of the joined trace) equal one process's bit for bit on the same
    executor. num_gpus: per task (default 1 where the cluster has GPUs, else 0). A lost worker
    is retried ``max_retries`` times; then the call raises EbmError. runtime_env: Ray's, for
    the tasks (e.g. environment variables)."""
    if options.get("warmup"):
        raise ValueError("warmup adapts from all chains together, so it cannot be split: warm up once, then pass the adapted step_size")
    bounds = shard_bounds(chains, workers)
    task = _task(_sample_shard, num_gpus, max_retries, runtime_env)
    portable = _portable(energy)
    keep_trace = trace or diagnostics
    refs = [task.remote(portable, i, workers, {"chains": chains, "trace": keep_trace, **options}) for i in range(workers)]
    parts = _gather(refs, "chains", list(zip(bounds, bounds[1:])))
    result = ebm_gpu.Samples(np.concatenate([p.states for p in parts]))
    if keep_trace:
        # Traces are [draws, chains, dim]: shards join along the chains.
        joined = np.ascontiguousarray(np.concatenate([p.trace for p in parts], axis=1))
        result.trace = joined if trace else None
        if diagnostics:
            with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
                names = []
                for i, p in enumerate(parts):
                    names.append(os.path.join(tmp, f"trace{i}.npy"))
                    np.save(names[-1], p.trace)
                    # merge joins only shards whose records say they are one run's.
                    with open(names[-1] + ".shard.json", "w") as f:
                        f.write(p.trace_record)
                diag = os.path.join(tmp, "diagnostics.json")
                ebm_gpu.run("merge", "--out", os.path.join(tmp, "trace.npy"), "--diagnostics", diag, *names)
                with open(diag) as f:
                    result.diagnostics = json.load(f)
    return result


def score(energy: Any, points: np.ndarray, *, workers: int = 2, num_gpus: Optional[float] = None,
          max_retries: int = 2, runtime_env: Optional[dict] = None, **options: Any) -> dict:
    """:func:`ebm_gpu.score` with the points split over ``workers`` Ray tasks, joined in order.
    Raises EbmError when the parts' normalisers differ (an RBM's AIS log Z depends on the
    points it is fitted to: score those with ``log_z="exact"`` or in one process)."""
    ebm_gpu._check_rows("points", points)
    bounds = shard_bounds(len(points), workers)
    task = _task(_score_part, num_gpus, max_retries, runtime_env)
    portable = _portable(energy)
    refs = [task.remote(portable, points[a:b], options) for a, b in zip(bounds, bounds[1:])]
    parts = _gather(refs, "points", list(zip(bounds, bounds[1:])))
    log_zs = {json.dumps(p["normaliser"].get("log_z")) for p in parts}
    if len(log_zs) > 1:
        raise EbmError(f"the parts' log Z differ ({', '.join(sorted(log_zs))}): this energy's normaliser depends on the points; score it in one process or with an exact normaliser")
    out = dict(parts[0])
    for key in ("energy", "grad_norm", "log_density"):
        out[key] = np.concatenate([p[key] for p in parts])
    out["ratio"] = None
    return out


def _ais_shard(run_dir: str, shard: int, shards: int, options: dict) -> dict:
    _maybe_crash(shard)
    return ebm_gpu.rbm_eval(run_dir, ais_shard=(shard, shards), **options)


def rbm_eval(run_dir: Union[str, os.PathLike], *, data: str, workers: int = 2, ais_runs: int = 100,
             num_gpus: Optional[float] = None, max_retries: int = 2, runtime_env: Optional[dict] = None,
             **options: Any) -> dict:
    """:func:`ebm_gpu.rbm_eval` with every AIS estimate's ``ais_runs`` runs split over
    ``workers`` Ray tasks (``ebm rbm eval --ais-shard``), their log weights joined in run order
    (``--ais-join``): the same log Z, interval and likelihoods as one process, on the same
    executor. The rest of the evaluation (likelihood, reconstruction, pseudo-likelihood) runs
    here once."""
    if options.get("exact"):
        raise ValueError("exact=True enumerates log Z in one process; there are no AIS runs to split")
    bounds = shard_bounds(ais_runs, workers)
    task = _task(_ais_shard, num_gpus, max_retries, runtime_env)
    settings = {"data": data, "ais_runs": ais_runs, **options}
    refs = [task.remote(str(run_dir), i, workers, settings) for i in range(workers)]
    parts = _gather(refs, "AIS runs", list(zip(bounds, bounds[1:])))
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        files = []
        for i, part in enumerate(parts):
            files.append(os.path.join(tmp, f"ais{i}.json"))
            with open(files[-1], "w") as f:
                json.dump(part, f)
        return ebm_gpu.rbm_eval(run_dir, ais_join=files, **settings)


class _TrainWorker:
    """One data-parallel worker: a replica of the run, computing its rows of every batch."""

    def __init__(self, run_dir: str, first: int, end: int):
        self.trainer = _native.ShardTrainer(run_dir)
        self.rows = (first, end)

    def share(self):
        return self.trainer.share(*self.rows)

    def finish(self, joined):
        return self.trainer.finish(joined)

    def params(self):
        return self.trainer.params()

    def record(self, run_dir: str, wall: float, how: str) -> None:
        self.trainer.record(run_dir, wall, how)


def train(run_dir: Union[str, os.PathLike], *, steps: int, workers: int = 2, num_cpus: float = 1,
          **options: Any) -> ebm_gpu.TrainResult:
    """Data-parallel training on ``workers`` Ray actors (CPU executor): each owns a slice of
    every batch — its positives, its negatives' Langevin refresh — the gradients are summed
    across workers in a fixed order every step (an all-reduce through Ray's object store),
    and every worker takes the same optimizer step, so all replicas stay bit-identical; the
    result matches one-process training up to the order of the gradient sums.

    A new ``run_dir`` is set up by :func:`ebm_gpu.train` with ``options`` (data, model, loss,
    batch, ...); an existing run continues from its checkpoint. Trains to ``steps`` and writes
    metrics.csv rows, train.log and the checkpoint as ``ebm train`` does (``ebm train --resume``
    continues it in one process). Score-matching losses are not split yet, and the divergence
    guard of ``ebm train`` (rollback on a blown-up energy gap) does not run here.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists() or options.get("force"):
        ebm_gpu.train(run_dir, steps=steps, backend="cpu", setup_only=True, **options)
    elif options:
        raise ValueError(f"{run_dir} holds a run already; its settings stay ({', '.join(options)} given): pass force=True to start over")
    probe = _native.ShardTrainer(str(run_dir))
    start_step, batch = probe.step, probe.batch
    del probe
    if steps < start_step:
        raise ValueError(f"steps={steps} is below the checkpoint's step {start_step}; a run cannot go back")
    bounds = shard_bounds(batch, workers)
    actor = ray.remote(num_cpus=num_cpus, max_restarts=0)(_TrainWorker)
    pool = [actor.remote(str(run_dir), a, b) for a, b in zip(bounds, bounds[1:])]
    ranges = list(zip(bounds, bounds[1:]))
    begin = time.time()
    for _ in range(start_step, steps):
        shares = _gather([w.share.remote() for w in pool], "batch rows", ranges)
        joined = ray.put(_native.join_shares(shares))
        metrics = _gather([w.finish.remote(joined) for w in pool], "batch rows", ranges)
        if len({json.dumps(m, sort_keys=True) for m in metrics}) > 1:
            raise EbmError(f"data-parallel workers disagree at step {metrics[0]['step']}: {metrics}")
    if steps > start_step:
        _gather([pool[0].record.remote(str(run_dir), time.time() - begin, f"data-parallel on {workers} Ray workers")],
                "batch rows", ranges[:1])
    for w in pool:
        ray.kill(w)
    return ebm_gpu.TrainResult(run_dir, ebm_gpu._read_csv(run_dir / "metrics.csv"))
