"""Scale-out on a local Ray cluster of two CPUs: sharded sampling and scoring equal one
process bit for bit, a lost worker is retried or reported, data-parallel training matches
one-process training."""

import builtins
import importlib
import os
import sys

import numpy as np
import pytest

import ebm_gpu
from conftest import require

ray = require("ray")
import ebm_gpu.ray as eray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"RAYON_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


SETTINGS = dict(chains=301, steps=100, sampler="mala", step_size=0.05, seed=9, backend="cpu")


def test_sharded_sampling_equals_one_process():
    single = ebm_gpu.sample("ring8", trace=True, thin=10, **SETTINGS)
    for workers in (1, 2, 3):
        split = eray.sample("ring8", workers=workers, trace=True, thin=10, **SETTINGS)
        assert np.array_equal(split.states, single.states), workers
        assert np.array_equal(split.trace, single.trace), workers
    with_diag = eray.sample("ring8", workers=2, diagnostics=True, thin=10, **SETTINGS)
    # Diagnostics of the joined trace: those `ebm sample --diagnostics` gives for one process.
    whole = ebm_gpu.sample("ring8", diagnostics=True, thin=10, **SETTINGS).diagnostics["dimensions"]
    joined = with_diag.diagnostics["dimensions"]
    for key in ("mean", "sd", "rhat", "ess_bulk", "ess_tail"):
        assert [d[key] for d in joined] == [d[key] for d in whole], key


def test_a_lost_worker_is_retried_or_reported(tmp_path):
    single = ebm_gpu.sample("ring8", **SETTINGS)
    marker = tmp_path / "crashed"
    # The worker of shard 1 dies (os._exit) while the marker file does not exist.
    env = {"env_vars": {eray._CRASH_ENV: f"1:{marker}", "RAYON_NUM_THREADS": "1"}}
    # Without retries the call fails naming the chains; no partial array comes back.
    with pytest.raises(ebm_gpu.EbmError, match=r"chains 100\.\.199 failed on its Ray worker"):
        eray.sample("ring8", workers=3, max_retries=0, runtime_env=env, **SETTINGS)
    assert marker.exists()
    marker.unlink()
    # With a retry the range runs again: the result is complete and exact.
    again = eray.sample("ring8", workers=3, max_retries=1, runtime_env=env, **SETTINGS)
    assert marker.exists() and np.array_equal(again.states, single.states)


def test_sharded_scoring_equals_one_process():
    points = np.random.default_rng(2).normal(size=(101, 2)).astype(np.float32)
    single = ebm_gpu.score("ring8", points, backend="cpu")
    split = eray.score("ring8", points, workers=3, backend="cpu")
    for key in ("energy", "grad_norm", "log_density"):
        assert np.array_equal(split[key], single[key]), key


def test_data_parallel_training_matches_one_process(tmp_path):
    options = dict(data="ring8", batch=64, seed=3, model="2/32/silu/32/silu/1", langevin_steps=10, buffer_size=1000)
    single = ebm_gpu.train(tmp_path / "single", steps=20, backend="cpu", **options)
    parallel = eray.train(tmp_path / "parallel", steps=20, workers=2, **options)
    assert list(parallel.metrics["step"]) == list(range(1, 21))
    np.testing.assert_allclose(parallel.metrics["loss"], single.metrics["loss"], rtol=1e-4, atol=1e-5)
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 13), np.linspace(-3, 3, 13)), -1).reshape(-1, 2).astype(np.float32)
    e_single, _ = single.energy().energy_grad(grid)
    e_parallel, _ = parallel.energy().energy_grad(grid)
    np.testing.assert_allclose(e_parallel, e_single, rtol=1e-4, atol=1e-4)
    # The run continues in one process from the data-parallel checkpoint.
    more = ebm_gpu.resume(tmp_path / "parallel", steps=25, backend="cpu")
    assert more.metrics["step"][-1] == 25


def test_bad_requests():
    with pytest.raises(TypeError, match="energy must be"):
        eray.sample(3.5, workers=2, **SETTINGS)
    with pytest.raises(ValueError, match="warm up once"):
        eray.sample("ring8", workers=2, warmup=10, **SETTINGS)
    with pytest.raises(ValueError, match="workers must be between 1 and 301"):
        eray.sample("ring8", workers=400, **SETTINGS)


def test_missing_ray_is_a_clear_import_error(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "ebm_gpu.ray")
    with pytest.raises(ImportError, match=r"pip install 'ray>=2.9'"):
        importlib.import_module("ebm_gpu.ray")
    monkeypatch.undo()
    importlib.import_module("ebm_gpu.ray")


def test_sharded_ais_equals_one_process(tmp_path):
    from conftest import REPO

    digits = str(REPO / "data/digits")
    ebm_gpu.rbm_train(tmp_path / "rbm", data=digits, hidden=24, epochs=1, backend="cpu", limit=300)
    settings = dict(data=digits, ais_runs=30, betas=300, reverse_gibbs=50, seed=2, backend="cpu", limit=300)
    single = ebm_gpu.rbm_eval(tmp_path / "rbm", **settings)
    for workers in (2, 3):
        split = eray.rbm_eval(tmp_path / "rbm", workers=workers, **settings)
        for key in ("log_z", "log_z_std_err", "log_z_interval", "test_log_likelihood", "test_recon_error"):
            assert split[key] == single[key], (workers, key)
