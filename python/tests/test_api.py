"""The Python API against the `ebm` command: same seed and settings, same numbers; and its
refusals of bad input."""

import json
import subprocess

import numpy as np
import pytest

import ebm_gpu
from conftest import REPO

DIGITS = str(REPO / "data/digits")


def cli(ebm_bin, *args):
    subprocess.run([ebm_bin, *map(str, args)], check=True, capture_output=True, cwd=REPO)


def test_sample_equals_the_cli(ebm_bin, tmp_path):
    for sampler, extra in [("mala", {}), ("hmc", {"leapfrog": 5})]:
        py = ebm_gpu.sample("ring8", chains=300, steps=200, sampler=sampler, step_size=0.05, seed=3, backend="cpu", **extra)
        out = tmp_path / f"{sampler}.npy"
        flags = [f"--{k}" for k in extra] + [str(v) for v in extra.values()]
        cli(ebm_bin, "sample", "--energy", "ring8", "--chains", 300, "--steps", 200, "--sampler", sampler,
            "--step-size", 0.05, "--seed", 3, "--backend", "cpu", "--out", out, *flags)
        assert py.states.dtype == np.float32 and py.states.shape == (300, 2)
        assert np.array_equal(py.states, np.load(out)), sampler


def test_sample_leaves_unset_settings_to_the_cli(ebm_bin, tmp_path):
    # No sampler or step size: ebm sample's own defaults (mala with its default warm-up), not fixed ones.
    py = ebm_gpu.sample("ring8", chains=40, steps=30, seed=4, backend="cpu")
    out = tmp_path / "default.npy"
    cli(ebm_bin, "sample", "--energy", "ring8", "--chains", 40, "--steps", 30, "--seed", 4, "--backend", "cpu",
        "--out", out)
    assert np.array_equal(py.states, np.load(out))
    fixed = ebm_gpu.sample("ring8", chains=40, steps=30, seed=4, backend="cpu", sampler="mala", step_size=0.01)
    assert not np.array_equal(py.states, fixed.states), "the default warm-up ran"


def test_sample_inputs_and_outputs(tmp_path):
    init = np.full((4, 2), 2.0, dtype=np.float32)
    s = ebm_gpu.sample({"type": "gaussian", "mean": [0, 0], "std": [1, 1]}, chains=64, steps=50, init=init,
                       backend="cpu", trace=True, diagnostics=True, thin=1)
    assert s.trace.shape == (50, 64, 2)
    assert s.diagnostics["chains"] == 64 and len(s.diagnostics["dimensions"]) == 2
    # A shard is its chains of the whole run.
    whole = ebm_gpu.sample("ring8", chains=10, steps=20, backend="cpu", seed=5)
    part = ebm_gpu.sample("ring8", chains=10, steps=20, backend="cpu", seed=5, shard=(1, 2))
    assert np.array_equal(part.states, whole.states[5:])


def test_train_and_eval_equal_the_cli(ebm_bin, tmp_path):
    settings = ["--data", "ring8", "--steps", 20, "--batch", 64, "--seed", 2, "--backend", "cpu", "--model", "2/16/silu/16/silu/1"]
    cli(ebm_bin, "train", "--run-dir", tmp_path / "cli", *settings)
    py = ebm_gpu.train(tmp_path / "py", data="ring8", steps=20, batch=64, seed=2, backend="cpu", model="2/16/silu/16/silu/1")
    assert list(py.metrics["step"]) == list(range(1, 21))
    cli_metrics = ebm_gpu._read_csv(tmp_path / "cli" / "metrics.csv")
    assert np.array_equal(py.metrics["loss"], cli_metrics["loss"])
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 9), np.linspace(-3, 3, 9)), -1).reshape(-1, 2).astype(np.float32)
    e_py, _ = py.energy().energy_grad(grid)
    e_cli, _ = ebm_gpu.energy(f"net:{tmp_path / 'cli' / 'checkpoint.safetensors'}").energy_grad(grid)
    assert np.array_equal(e_py, e_cli)
    # Resume to 30 steps, then evaluate.
    more = ebm_gpu.resume(tmp_path / "py", steps=30, backend="cpu")
    assert more.metrics["step"][-1] == 30
    report = ebm_gpu.evaluate(tmp_path / "py")
    assert report["step"] == 30 and np.isfinite(report["nll"]) and report["nll"] >= report["true_nll"] - 0.05, report


def test_train_on_an_array(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(500, 2)).astype(np.float32)
    r = ebm_gpu.train(tmp_path / "run", data=data, steps=5, batch=32, backend="cpu", model="2/8/silu/1")
    assert (tmp_path / "run" / "data.npy").exists() and r.metrics["step"][-1] == 5


def test_rbm_equals_the_cli(ebm_bin, tmp_path):
    settings = ["--data", DIGITS, "--hidden", 12, "--epochs", 1, "--seed", 4, "--backend", "cpu", "--limit", 400]
    cli(ebm_bin, "rbm", "train", "--run-dir", tmp_path / "cli", *settings)
    ebm_gpu.rbm_train(tmp_path / "py", data=DIGITS, hidden=12, epochs=1, seed=4, backend="cpu", limit=400)
    report = ebm_gpu.rbm_eval(tmp_path / "py", data=DIGITS, exact=True, backend="cpu", limit=400)
    text = subprocess.run([ebm_bin, "rbm", "eval", "--run-dir", tmp_path / "cli", "--data", DIGITS, "--exact",
                           "--backend", "cpu", "--limit", "400"], check=True, capture_output=True, text=True, cwd=REPO).stdout
    assert f"test log-likelihood: {report['test_log_likelihood']:.4f}" in text, (report, text)
    assert f"log Z: {report['log_z']:.4f} (exact)" in text
    means = ebm_gpu.rbm_sample(tmp_path / "py", chains=16, steps=50, backend="cpu")
    assert means.shape == (16, 64) and means.dtype == np.float32 and ((means >= 0) & (means <= 1)).all()


def test_energy_and_score_agree():
    x = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    e, g = ebm_gpu.energy("ring8").energy_grad(x)
    r = ebm_gpu.score("ring8", x, backend="cpu")
    np.testing.assert_allclose(r["energy"], e, rtol=1e-6)
    np.testing.assert_allclose(r["grad_norm"], np.linalg.norm(g, axis=1), rtol=1e-5)
    np.testing.assert_allclose(r["log_density"], -e, rtol=1e-6)  # ring8 is normalised
    # Central differences of the energy give its gradient.
    h = 1e-2
    for i in range(2):
        dx = np.zeros_like(x)
        dx[:, i] = h
        fd = (ebm_gpu.energy("ring8").energy_grad(x + dx)[0] - ebm_gpu.energy("ring8").energy_grad(x - dx)[0]) / (2 * h)
        np.testing.assert_allclose(g[:, i], fd, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (np.zeros((4, 2)), TypeError, "must be float32"),
        (np.zeros(4, dtype=np.float32), ValueError, "2 dimensions"),
        (np.zeros((2, 4), dtype=np.float32).T, ValueError, "C-contiguous"),
        (np.array([[0.0, np.nan]], dtype=np.float32), ValueError, "non-finite value at index (0, 1)"),
        ([[0.0, 1.0]], TypeError, "NumPy array"),
    ],
)
def test_bad_arrays_are_refused(bad, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        ebm_gpu.score("ring8", bad)


def test_engine_errors_are_python_exceptions(tmp_path):
    with pytest.raises(ebm_gpu.EbmError, match="--chains"):
        ebm_gpu.sample("ring8", chains=0)
    with pytest.raises(ebm_gpu.EbmError, match="no_such_preset"):
        ebm_gpu.sample("no_such_preset")
    with pytest.raises(ebm_gpu.EbmError, match="missing.npy"):
        ebm_gpu.train(tmp_path / "r", data=str(tmp_path / "missing.npy"), steps=1)
    with pytest.raises(ValueError, match=r"x has shape \[3, 3\]; the energy takes rows of 2"):
        ebm_gpu.energy("ring8").energy_grad(np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ebm_gpu.EbmError, match="0.weight"):
        ebm_gpu.Energy.from_tensors("2/4/silu/1", {"0.weight": np.zeros((4, 3), dtype=np.float32)})
    with pytest.raises(TypeError, match="energy must be"):
        ebm_gpu.sample(3.5)


def test_network_from_tensors_matches_its_file(tmp_path):
    rng = np.random.default_rng(1)
    t = {"0.weight": rng.normal(size=(8, 2)).astype(np.float32), "0.bias": rng.normal(size=8).astype(np.float32),
         "2.weight": rng.normal(size=(1, 8)).astype(np.float32), "2.bias": rng.normal(size=1).astype(np.float32)}
    net = ebm_gpu.Energy.from_tensors("2/8/tanh/1/head:-f", t)
    assert net.arch == "2/8/tanh/1/head:-f" and net.dim == 2 and net.spec is None
    x = rng.normal(size=(5, 2)).astype(np.float32)
    expected = -(np.tanh(x @ t["0.weight"].T + t["0.bias"]) @ t["2.weight"].T + t["2.bias"])[:, 0]
    np.testing.assert_allclose(net.energy_grad(x)[0], expected, rtol=1e-5, atol=1e-6)
    # In-memory networks sample through a temporary file.
    s = ebm_gpu.sample(net, chains=8, steps=5, backend="cpu")
    assert s.states.shape == (8, 2)
