"""PyTorch models converted in memory give the energies PyTorch computes (skipped, with a
message, where torch is not installed)."""

import numpy as np
import pytest

import ebm_gpu
from conftest import require


def test_mlp_and_conv_energies_equal_pytorch():
    torch = require("torch")
    nn = torch.nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 32), nn.ELU(0.5), nn.Linear(32, 1))
    conv = nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=4), nn.SiLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 16), nn.Softplus(), nn.Linear(16, 1),
    )
    cases = [(mlp, None, (2,), "f"), (conv, (1, 28, 28), (1, 28, 28), "-f")]
    for model, input_shape, shape, head in cases:
        energy = ebm_gpu.from_torch(model, input_shape=input_shape, head=head)
        x = torch.randn(7, *shape)
        with torch.no_grad():
            f = model(x)[:, 0].numpy()
        expected = f if head == "f" else -f
        e, _ = energy.energy_grad(np.ascontiguousarray(x.reshape(7, -1).numpy()))
        np.testing.assert_allclose(e, expected, rtol=1e-4, atol=1e-5)
        # The gradient is autograd's.
        xg = x.clone().requires_grad_(True)
        (model(xg)[:, 0].sum() * (1 if head == "f" else -1)).backward()
        _, g = energy.energy_grad(np.ascontiguousarray(x.reshape(7, -1).numpy()))
        np.testing.assert_allclose(g, xg.grad.reshape(7, -1).numpy(), rtol=1e-3, atol=1e-5)
    # A model goes straight into sample().
    s = ebm_gpu.sample(mlp, chains=16, steps=10, backend="cpu")
    assert s.states.shape == (16, 2)


def test_unsupported_layers_are_named():
    torch = require("torch")
    nn = torch.nn
    with pytest.raises(ValueError, match=r"layer 2 \(BatchNorm1d\) is not supported"):
        ebm_gpu.from_torch(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="square kernels"):
        ebm_gpu.from_torch(nn.Sequential(nn.Conv2d(1, 2, (3, 5)), nn.Flatten(), nn.Linear(2, 1)), input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="input_shape is needed"):
        ebm_gpu.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 1)))
    with pytest.raises(TypeError, match="nn.Sequential"):
        ebm_gpu.from_torch(nn.Linear(2, 1))


def _residual_class(nn):
    class Residual(nn.Module):
        """The documented pattern: body(x) + (proj(x) if proj is not None else x)."""

        def __init__(self, body, proj=None):
            super().__init__()
            self.body = body
            self.proj = proj

        def forward(self, x):
            return self.body(x) + (self.proj(x) if self.proj is not None else x)

    return Residual


def test_residual_blocks_equal_pytorch():
    torch = require("torch")
    nn = torch.nn
    Residual = _residual_class(nn)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.SiLU(),
        Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Dropout(0.1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1))),
        Residual(nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.SiLU()), proj=nn.Conv2d(4, 6, 1, stride=2, bias=False)),
        Residual(nn.Sequential(Residual(nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.Tanh())), nn.Conv2d(6, 6, 1))),
        Residual(nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.Softplus()), proj=nn.AvgPool2d(2)),
        nn.Flatten(), nn.Linear(24, 1),
    ).eval()
    energy = ebm_gpu.from_torch(model, input_shape=(1, 8, 8), head="-f")
    x = torch.randn(5, 1, 8, 8)
    xg = x.clone().requires_grad_(True)
    e_torch = -model(xg)[:, 0]
    e_torch.sum().backward()
    e, g = energy.energy_grad(np.ascontiguousarray(x.reshape(5, -1).numpy()))
    np.testing.assert_allclose(e, e_torch.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g, xg.grad.reshape(5, -1).numpy(), rtol=1e-3, atol=1e-5)


def test_bad_residual_blocks_are_named():
    torch = require("torch")
    nn = torch.nn
    Residual = _residual_class(nn)
    with pytest.raises(ValueError, match=r"layer 0\.proj \(Linear\).*nn.Conv2d or nn.AvgPool2d"):
        ebm_gpu.from_torch(
            nn.Sequential(Residual(nn.Sequential(nn.Linear(2, 2)), proj=nn.Linear(2, 2)), nn.Linear(2, 1)), input_shape=(2,)
        )
    # The body changes the shape and nothing projects the skip: the engine names the block.
    with pytest.raises(ebm_gpu.EbmError, match=r"residual block at layer 1.*1x8x8.*3x8x8"):
        ebm_gpu.from_torch(
            nn.Sequential(nn.Conv2d(1, 1, 1), Residual(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1))), nn.Flatten(), nn.Linear(192, 1)),
            input_shape=(1, 8, 8),
        )
