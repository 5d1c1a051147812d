"""PyTorch models in: an ``nn.Sequential`` of layers the engine has (residual blocks of the
documented ``body``/``proj`` pattern included) becomes an engine network, its weights copied in
memory (no file), its architecture read off the modules."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._native import Energy

SUPPORTED = (
    "Linear, Conv2d, ReLU, LeakyReLU, SiLU, Tanh, Softplus, ELU, Flatten, AvgPool2d, Identity, Dropout, "
    "and residual blocks (a module with children body: nn.Sequential and proj: None, Conv2d or AvgPool2d)"
)


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


def _residual_parts(module: Any) -> Optional[Tuple[Any, Any]]:
    """(body, proj) when `module` follows the residual pattern: children `body` (an
    nn.Sequential) and optionally `proj`; None otherwise."""
    import torch.nn as nn

    children = dict(module.named_children())
    body = getattr(module, "body", None)
    if not isinstance(body, nn.Sequential) or not set(children) <= {"body", "proj"}:
        return None
    return body, getattr(module, "proj", None)


def from_torch(model: Any, input_shape: Optional[Sequence[int]] = None, head: Optional[str] = None) -> Energy:
    """The engine network of a PyTorch ``nn.Sequential``, weights copied in memory.

    input_shape: (D,) or (C, H, W); optional when the first layer is Linear. head: how the
    outputs f become the energy: ``"f"`` (E = f), ``"-f"`` (E = -f, the UvA/IGEBM convention),
    ``"lse"`` (E = -logsumexp f, JEM) or ``"class:Y"``; default: f for one output, lse for more.

    Residual blocks: a module whose children are ``body`` (an nn.Sequential) and, optionally,
    ``proj`` (None, nn.Conv2d or nn.AvgPool2d), and whose forward is
    ``body(x) + (proj(x) if proj is not None else x)``, becomes the engine's ``res(...)`` block
    (the forward itself is not inspected: a module with these children must compute this).
    Raises ValueError naming the first layer the engine does not have.
    """
    import torch.nn as nn

    layers = _layers(model)
    if input_shape is None:
        first = next((m for _, m in layers if not isinstance(m, (nn.Identity, nn.Dropout))), None)
        if not isinstance(first, nn.Linear):
            raise ValueError("input_shape is needed, e.g. (1, 28, 28), unless the first layer is Linear")
        input_shape = (first.in_features,)
    tensors = {}
    parts = ["x".join(str(int(v)) for v in input_shape)] + _convert(layers, "", tensors)
    if head is not None:
        parts.append(f"head:{head}")
    return Energy.from_tensors("/".join(parts), tensors)


def _convert(layers: List[Tuple[str, Any]], prefix: str, tensors: dict) -> List[str]:
    """The engine's text segments of `layers` (one level of a network), their tensors added to
    `tensors` under the engine's names: `prefix` + the segment's index (+ `.body.I` in blocks)."""
    import torch.nn as nn

    parts: List[str] = []

    def take(stem: str, m: Any) -> None:
        for name in ("weight", "bias"):
            tensor = getattr(m, name, None)
            if tensor is not None:
                tensors[f"{stem}.{name}"] = np.ascontiguousarray(tensor.detach().cpu().float().numpy(), dtype=np.float32)

    for position, m in layers:
        stem = f"{prefix}{len(parts)}"
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue  # the identity at inference
        residual = _residual_parts(m)
        if residual is not None:
            body, proj = residual
            inner = _convert(_layers(body), f"{stem}.body.", tensors)
            if not inner:
                raise ValueError(f"layer {position} ({type(m).__name__}): the residual block's body is empty")
            segment = "res(" + ",".join(inner)
            if proj is not None:
                if not isinstance(proj, (nn.Conv2d, nn.AvgPool2d)):
                    raise ValueError(
                        f"layer {position}.proj ({type(proj).__name__}): a residual projection must be nn.Conv2d or nn.AvgPool2d"
                    )
                segment += ";proj:" + _leaf(f"{position}.proj", proj)
                take(f"{stem}.proj", proj)
            parts.append(segment + ")")
            continue
        parts.append(_leaf(position, m))
        take(stem, m)
    return parts


def _leaf(position: str, m: Any) -> str:
    """The engine's text segment of one leaf layer."""
    import torch.nn as nn

    where = f"layer {position} ({type(m).__name__})"
    if isinstance(m, nn.Linear):
        return f"{m.out_features}" + ("" if m.bias is not None else ":nobias")
    if isinstance(m, nn.Conv2d):
        (kh, kw), (sh, sw), (dh, dw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
        padding = m.padding
        if isinstance(padding, str):
            raise ValueError(f"{where}: padding={padding!r} is not supported; give it as a number")
        ph, pw = _pair(padding)
        if kh != kw or sh != sw or ph != pw or (dh, dw) != (1, 1) or m.groups != 1 or m.padding_mode != "zeros":
            raise ValueError(f"{where}: only square kernels, equal strides and paddings, no dilation, groups=1 and zero padding are supported")
        return f"{m.out_channels}k{kh}s{sh}p{ph}" + ("" if m.bias is not None else ":nobias")
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.LeakyReLU):
        return f"leaky_relu:{m.negative_slope}"
    if isinstance(m, nn.SiLU):
        return "silu"
    if isinstance(m, nn.Tanh):
        return "tanh"
    if isinstance(m, nn.Softplus):
        if m.beta != 1:
            raise ValueError(f"{where}: only beta=1 is supported, got beta={m.beta}")
        return "softplus"
    if isinstance(m, nn.ELU):
        return f"elu:{m.alpha}"
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ValueError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
        return "flatten"
    if isinstance(m, nn.AvgPool2d):
        k, stride, padding = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
        if k[0] != k[1] or stride != k or padding != (0, 0) or m.ceil_mode:
            raise ValueError(f"{where}: only square pooling with stride = kernel size and no padding is supported")
        return f"avgpool:{k[0]}"
    raise ValueError(f"{where} is not supported by the engine; supported layers: {SUPPORTED}")
