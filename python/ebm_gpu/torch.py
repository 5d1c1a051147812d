"""PyTorch models in: an ``nn.Sequential`` of layers the engine has becomes an engine network,
its weights copied in memory (no file), its architecture read off the modules."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._native import Energy

SUPPORTED = "Linear, Conv2d, ReLU, LeakyReLU, SiLU, Tanh, Softplus, ELU, Flatten, AvgPool2d, Identity, Dropout"


def _pair(value: Any) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _layers(model: Any) -> List[Tuple[str, Any]]:
    """(position, module) of the model's leaf layers in order; nested nn.Sequential flattened."""
    import torch.nn as nn

    if not isinstance(model, nn.Sequential):
        raise TypeError(f"from_torch takes an nn.Sequential, got {type(model).__name__}")
    out = []
    for name, module in model.named_children():
        if isinstance(module, nn.Sequential):
            out += [(f"{name}.{inner}", m) for inner, m in _layers(module)]
        else:
            out.append((name, module))
    return out


def from_torch(model: Any, input_shape: Optional[Sequence[int]] = None, head: Optional[str] = None) -> Energy:
    """The engine network of a PyTorch ``nn.Sequential``, weights copied in memory.

    input_shape: (D,) or (C, H, W); optional when the first layer is Linear. head: how the
    outputs f become the energy: ``"f"`` (E = f), ``"-f"`` (E = -f, the UvA/IGEBM convention),
    ``"lse"`` (E = -logsumexp f, JEM) or ``"class:Y"``; default: f for one output, lse for more.
    Raises ValueError naming the first layer the engine does not have.
    """
    import torch.nn as nn

    layers = _layers(model)
    if input_shape is None:
        first = next((m for _, m in layers if not isinstance(m, (nn.Identity, nn.Dropout))), None)
        if not isinstance(first, nn.Linear):
            raise ValueError("input_shape is needed, e.g. (1, 28, 28), unless the first layer is Linear")
        input_shape = (first.in_features,)
    parts = ["x".join(str(int(v)) for v in input_shape)]
    tensors = {}

    def take(index: int, name: str, tensor: Any) -> None:
        tensors[f"{index}.{name}"] = np.ascontiguousarray(tensor.detach().cpu().float().numpy(), dtype=np.float32)

    for position, m in layers:
        index = len(parts) - 1
        where = f"layer {position} ({type(m).__name__})"
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue  # the identity at inference
        if isinstance(m, nn.Linear):
            parts.append(f"{m.out_features}" + ("" if m.bias is not None else ":nobias"))
            take(index, "weight", m.weight)
            if m.bias is not None:
                take(index, "bias", m.bias)
        elif isinstance(m, nn.Conv2d):
            (kh, kw), (sh, sw), (dh, dw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
            padding = m.padding
            if isinstance(padding, str):
                raise ValueError(f"{where}: padding={padding!r} is not supported; give it as a number")
            ph, pw = _pair(padding)
            if kh != kw or sh != sw or ph != pw or (dh, dw) != (1, 1) or m.groups != 1 or m.padding_mode != "zeros":
                raise ValueError(f"{where}: only square kernels, equal strides and paddings, no dilation, groups=1 and zero padding are supported")
            parts.append(f"{m.out_channels}k{kh}s{sh}p{ph}" + ("" if m.bias is not None else ":nobias"))
            take(index, "weight", m.weight)
            if m.bias is not None:
                take(index, "bias", m.bias)
        elif isinstance(m, nn.ReLU):
            parts.append("relu")
        elif isinstance(m, nn.LeakyReLU):
            parts.append(f"leaky_relu:{m.negative_slope}")
        elif isinstance(m, nn.SiLU):
            parts.append("silu")
        elif isinstance(m, nn.Tanh):
            parts.append("tanh")
        elif isinstance(m, nn.Softplus):
            if m.beta != 1:
                raise ValueError(f"{where}: only beta=1 is supported, got beta={m.beta}")
            parts.append("softplus")
        elif isinstance(m, nn.ELU):
            parts.append(f"elu:{m.alpha}")
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
            parts.append("flatten")
        elif isinstance(m, nn.AvgPool2d):
            k, stride, padding = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
            if k[0] != k[1] or stride != k or padding != (0, 0) or m.ceil_mode:
                raise ValueError(f"{where}: only square pooling with stride = kernel size and no padding is supported")
            parts.append(f"avgpool:{k[0]}")
        else:
            raise ValueError(f"{where} is not supported by the engine; supported layers: {SUPPORTED}")
    if head is not None:
        parts.append(f"head:{head}")
    return Energy.from_tensors("/".join(parts), tensors)
