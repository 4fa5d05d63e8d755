"""Resolve ``device="auto"|"cpu"|"cuda"`` once, with an error listing what exists."""

from __future__ import annotations

import torch

from .errors import DeviceError


def available_devices() -> list[str]:
    """Names of the compute devices usable on this machine (``"cpu"`` first)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
        names.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    return names


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device argument into a :class:`torch.device`.

    ``"auto"`` (or ``None``) picks CUDA when present, else the CPU.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(
            f"device={device!r} is not a device name; expected one of "
            f"{['auto', *available_devices()]}."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            f"valid devices here: {['auto', *available_devices()]}."
        )
    if resolved.type not in ("cpu", "cuda"):
        raise DeviceError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'.")
    return resolved
