"""ebm-gpu from Python: energy-based models sampled and trained by the engine's WGSL kernels
(on any Vulkan/Metal/DX12/GL GPU) or its CPU executor, with NumPy arrays in and out.

Every job runs the same code as the ``ebm`` command line, in this process with the GIL
released, so a call and the command with the same seed and settings give the same numbers.
Arrays go in as float32 C-order NumPy arrays (anything else is refused, never silently
converted) and come back the same way.

>>> import ebm_gpu
>>> s = ebm_gpu.sample("ring8", chains=4096, steps=1000, step_size=0.02, seed=1)
>>> s.states.shape
(4096, 2)

Options the functions do not name pass through as the command's flags: ``warmup=200`` is
``--warmup 200``, ``no_adapt_mass=True`` is ``--no-adapt-mass``, a list is comma-joined.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ._native import EbmError, Energy
from . import _native


def _quiet_adapter_probing() -> None:
    """As the ebm binary does: without XDG_RUNTIME_DIR the display libraries that GPU drivers
    load print "XDG_RUNTIME_DIR is invalid or not set" while adapters are probed; point it at a
    private, empty directory (0700, this user's) instead."""
    if "XDG_RUNTIME_DIR" in os.environ or not hasattr(os, "getuid"):
        return
    path = os.path.join(tempfile.gettempdir(), f"ebm-runtime-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return
    import stat

    if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
        os.environ["XDG_RUNTIME_DIR"] = path


_quiet_adapter_probing()

__all__ = [
    "EbmError",
    "Energy",
    "Samples",
    "TrainResult",
    "energy",
    "from_torch",
    "sample",
    "train",
    "resume",
    "evaluate",
    "score",
    "rbm_train",
    "rbm_eval",
    "rbm_sample",
    "run",
]

EnergyLike = Union[str, Mapping[str, Any], Energy, Any]


def run(*args: Any, progress: bool = False) -> None:
    """Runs one ``ebm`` command in this process: ``run("sample", "--chains", 64)``."""
    _native.run([str(a) for a in args], progress)


def energy(spec: Union[str, Mapping[str, Any]]) -> Energy:
    """The energy a spec names: a preset (``"ring8"``), a JSON spec (dict or text), a file, or
    ``net:FILE`` / ``mlp:FILE`` / ``rbm:FILE``; evaluate it with ``.energy_grad(x)``."""
    return Energy.resolve(spec if isinstance(spec, str) else json.dumps(spec))


def from_torch(model: Any, input_shape: Optional[Sequence[int]] = None, head: Optional[str] = None) -> Energy:
    """A PyTorch ``nn.Sequential`` as an engine energy, converted in memory (see
    :func:`ebm_gpu.torch.from_torch`)."""
    from .torch import from_torch as convert

    return convert(model, input_shape=input_shape, head=head)


@dataclass
class Samples:
    """What :func:`sample` returns."""

    #: Final states, [chains, dim] float32 (for a shard: its chains only).
    states: np.ndarray
    #: Per-dimension mean, sd, quantiles, R-hat, ESS, acceptance, ... (with ``diagnostics=True``).
    diagnostics: Optional[dict] = None
    #: The thinned trace, [steps / thin, chains, dim] float32 (with ``trace=True``).
    trace: Optional[np.ndarray] = None
    #: With ``shard`` and ``trace=True``: the trace's shard record (JSON text), which ``ebm
    #: merge`` needs beside the array (as ``FILE.shard.json``) to join the shards' traces.
    trace_record: Optional[str] = None


@dataclass
class TrainResult:
    """What :func:`train` and :func:`resume` return."""

    run_dir: Path
    #: metrics.csv as columns: step, loss, e_pos, e_neg, energy_gap, grad_norm, ... (float64
    #: arrays; text columns as string arrays).
    metrics: dict

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"

    def energy(self) -> Energy:
        """The trained network as an energy."""
        return Energy.resolve(f"net:{self.checkpoint}")


def _check_rows(name: str, array: Any, ndim: int = 2) -> np.ndarray:
    """float32, C order, `ndim` dimensions, finite: refused otherwise, naming `name`."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
    if array.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {array.dtype} (use {name}.astype(np.float32))")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray({name}))")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} holds a non-finite value at index {where}")
    return array


def _flag_args(options: Mapping[str, Any]) -> list:
    """Keyword options as command-line flags (None and False leave a flag out)."""
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


def _as_energy(spec: EnergyLike) -> Union[str, Energy]:
    """A spec as text (dicts as JSON), or an Energy (PyTorch models converted); TypeError else."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return json.dumps(spec)
    if isinstance(spec, Energy):
        return spec if spec.spec is None else spec.spec
    try:
        import torch.nn
    except ImportError:
        torch = None
    if torch is not None and isinstance(spec, torch.nn.Module):
        return from_torch(spec)
    raise TypeError(f"energy must be a spec (str or dict), an ebm_gpu.Energy or a torch nn.Sequential, got {type(spec).__name__}")


def _energy_arg(spec: EnergyLike, folder: str) -> str:
    """An --energy argument for `spec`; networks in memory are written into `folder`."""
    spec = _as_energy(spec)
    if isinstance(spec, str):
        return spec
    path = os.path.join(folder, "network.safetensors")
    spec.save(path)
    return f"net:{path}"


def _read_csv(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    columns = {}
    for i, name in enumerate(header):
        values = [r[i] for r in body]
        try:
            columns[name] = np.array([float(v) for v in values])
        except ValueError:  # a text column (e.g. the executor)
            columns[name] = np.array(values)
    return columns


def sample(
    energy: EnergyLike = "ring8",
    *,
    chains: Optional[int] = None,
    steps: Optional[int] = None,
    sampler: Optional[str] = None,
    step_size: Optional[float] = None,
    seed: int = 0,
    backend: str = "auto",
    init: Union[str, np.ndarray, None] = None,
    shard: Optional[Sequence[int]] = None,
    diagnostics: bool = False,
    trace: bool = False,
    progress: bool = False,
    **options: Any,
) -> Samples:
    """Runs ``chains`` MCMC chains on ``energy`` for ``steps`` steps (``ebm sample``).

    energy: a preset name, a JSON spec (dict or text), ``net:FILE``, an :class:`Energy`, or a
    PyTorch ``nn.Sequential`` (converted in memory). sampler: ula, mala, hmc or rwmh.
    backend: auto (a hardware GPU if one opens, else the CPU executor), gpu or cpu.
    init: gaussian, uniform, replay, or a float32 array of rows [n, dim] (chain c starts from
    row c mod n). shard: (i, n) runs chains i*C/n .. (i+1)*C/n - 1 only, each with the random
    numbers it has in the whole run. diagnostics / trace: also return the diagnostics dict
    (R-hat, ESS, acceptance, ...) / the thinned trace. Other options are ``ebm sample`` flags.
    chains, steps, sampler, step_size: None leaves each to ``ebm sample``, which takes it from a
    training checkpoint (``net:FILE``: its sampler, or a noise-conditional model's annealing), or
    its defaults (4096 chains x 1000 steps, 16 x 256 for images; mala warming up its step size).
    """
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        out = os.path.join(tmp, "states.npy")
        args = ["sample", "--energy", _energy_arg(energy, tmp), "--seed", seed, "--backend", backend, "--out", out]
        for flag, value in [("--chains", chains), ("--steps", steps), ("--sampler", sampler), ("--step-size", step_size)]:
            if value is not None:
                args += [flag, value]
        if isinstance(init, np.ndarray):
            path = os.path.join(tmp, "init.npy")
            np.save(path, _check_rows("init", init))
            args += ["--init", path]
        elif init is not None:
            args += ["--init", init]
        if shard is not None:
            i, n = shard
            args += ["--shard", f"{i}/{n}"]
        diag_path = os.path.join(tmp, "diagnostics.json")
        trace_path = os.path.join(tmp, "trace.npy")
        if diagnostics:
            args += ["--diagnostics", diag_path]
        if trace:
            args += ["--trace", trace_path]
        run(*args, *_flag_args(options), progress=progress)
        result = Samples(np.load(out))
        if diagnostics:
            with open(diag_path) as f:
                result.diagnostics = json.load(f)
        if trace:
            result.trace = np.load(trace_path)
            if shard is not None:
                with open(trace_path + ".shard.json") as f:
                    result.trace_record = f.read()
        return result


def train(
    run_dir: Union[str, os.PathLike],
    *,
    data: Union[str, np.ndarray] = "ring8",
    model: Optional[str] = None,
    steps: Optional[int] = None,
    loss: str = "cd",
    seed: int = 0,
    backend: str = "auto",
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> TrainResult:
    """Trains a network energy into ``run_dir`` (``ebm train``): checkpoints, metrics.csv and
    figures there, resumable with :func:`resume`.

    data: a toy dataset name (ring8, two_moons, ...), an image folder (MNIST layout), a .npy /
    .csv path, or a float32 array of rows [n, dim] (saved as RUN_DIR/data.npy, which the run
    then reads, so a resume finds it). model: a network in the text form, e.g.
    ``2/128/silu/128/silu/1`` (the CLI's default) or a convolutional one. Other options are ``ebm train`` flags (batch, lr, ...).
    """
    run_dir = Path(run_dir)
    if isinstance(data, np.ndarray):
        _check_rows("data", data)
        run_dir.mkdir(parents=True, exist_ok=True)
        data_path = run_dir / "data.npy"
        np.save(data_path, data)
        data = str(data_path)
    args = ["train", "--run-dir", run_dir, "--data", data, "--loss", loss, "--seed", seed, "--backend", backend]
    if model is not None:
        args += ["--model", model]
    if steps is not None:
        args += ["--steps", steps]
    if force:
        args.append("--force")
    run(*args, *_flag_args(options), progress=progress)
    return TrainResult(run_dir, _read_csv(run_dir / "metrics.csv"))


def resume(run_dir: Union[str, os.PathLike], *, steps: Optional[int] = None, backend: str = "auto",
           progress: bool = False, **options: Any) -> TrainResult:
    """Continues the run in ``run_dir`` to ``steps`` (``ebm train --resume``), bit-identical to
    a run that never stopped."""
    run_dir = Path(run_dir)
    args = ["train", "--resume", run_dir, "--backend", backend]
    if steps is not None:
        args += ["--steps", steps]
    run(*args, *_flag_args(options), progress=progress)
    return TrainResult(run_dir, _read_csv(run_dir / "metrics.csv"))


def evaluate(run_dir: Union[str, os.PathLike], *, progress: bool = False, **options: Any) -> dict:
    """Exact held-out NLL and total variation of a trained 2-D model (``ebm eval``); the
    contents of RUN_DIR/eval.json."""
    run_dir = Path(run_dir)
    run("eval", "--run-dir", run_dir, *_flag_args(options), progress=progress)
    with open(run_dir / "eval.json") as f:
        return json.load(f)


def score(energy: EnergyLike, points: np.ndarray, *, backend: str = "auto", progress: bool = False,
          **options: Any) -> dict:
    """Energies, gradient norms and log-densities of float32 ``points`` [n, dim] (``ebm score``):
    a dict with float64 arrays ``energy``, ``grad_norm`` and ``log_density`` (NaN where not
    available), ``normaliser`` (how log Z was obtained, and its value), ``kind`` and ``dim``."""
    _check_rows("points", points)
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        path, out = os.path.join(tmp, "points.npy"), os.path.join(tmp, "score.json")
        np.save(path, points)
        run("score", "--energy", _energy_arg(energy, tmp), "--points", path, "--out", out, "--backend", backend,
            *_flag_args(options), progress=progress)
        with open(out) as f:
            report = json.load(f)
    records = report["records"]
    column = lambda key: np.array([r[key] if isinstance(r[key], (int, float)) else np.nan for r in records], dtype=np.float64)
    return {
        "energy": column("energy"),
        "grad_norm": column("grad_norm"),
        "log_density": column("log_density"),
        "normaliser": report["normaliser"],
        "ratio": report["ratio"],
        "kind": report["kind"],
        "dim": report["dim"],
    }


def rbm_train(run_dir: Union[str, os.PathLike], *, data: str, hidden: int = 64, epochs: int = 10, seed: int = 0,
              backend: str = "auto", force: bool = False, progress: bool = False, **options: Any) -> dict:
    """Trains a restricted Boltzmann machine into ``run_dir`` (``ebm rbm train``; ``cd=K`` or
    ``pcd=K``, ``lr``, ``batch``, ``gaussian=True``, ...); returns metrics.csv as columns."""
    run_dir = Path(run_dir)
    args = ["rbm", "train", "--run-dir", run_dir, "--data", data, "--hidden", hidden, "--epochs", epochs,
            "--seed", seed, "--backend", backend]
    if force:
        args.append("--force")
    run(*args, *_flag_args(options), progress=progress)
    return _read_csv(run_dir / "metrics.csv")


def rbm_eval(run_dir: Union[str, os.PathLike], *, data: str, exact: bool = False, seed: int = 0,
             backend: str = "auto", ais_shard: Optional[Sequence[int]] = None, progress: bool = False,
             **options: Any) -> dict:
    """Test log-likelihood (exact log Z or AIS with its interval), reconstruction error and
    pseudo-likelihood of an RBM run (``ebm rbm eval``), as a dict. ``ais_runs``, ``betas``,
    ``reverse_gibbs`` set the AIS estimates; ``ais_shard=(i, n)`` runs only shard i of their
    runs and returns the log weights, which ``ais_join=[files]`` joins (see ebm_gpu.ray)."""
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        out = os.path.join(tmp, "eval.json")
        shard = [] if ais_shard is None else ["--ais-shard", "{}/{}".format(*ais_shard)]
        run("rbm", "eval", "--run-dir", run_dir, "--data", data, "--seed", seed, "--backend", backend,
            "--json", out, *shard, *_flag_args({"exact": exact, **options}), progress=progress)
        with open(out) as f:
            return json.load(f)


def rbm_sample(run_dir: Union[str, os.PathLike], *, chains: int = 64, steps: int = 1000, seed: int = 0,
               backend: str = "auto", progress: bool = False) -> np.ndarray:
    """Pixel means E[v | h] of ``chains`` Gibbs chains after ``steps`` steps from noise
    (``ebm rbm sample``), [chains, visible units] float32."""
    with tempfile.TemporaryDirectory(prefix="ebm-gpu-") as tmp:
        out = os.path.join(tmp, "samples.npy")
        run("rbm", "sample", "--run-dir", run_dir, "--chains", chains, "--steps", steps, "--seed", seed,
            "--backend", backend, "--out", out, progress=progress)
        return np.load(out)
