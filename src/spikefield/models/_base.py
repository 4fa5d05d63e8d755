"""A small base class for spikefield estimators: parameters, fitted checks, devices, save/load.

A model subclasses :class:`BaseModel`, lists its hyper-parameters in ``__init__`` (stored
unchanged under the same names, as in scikit-learn) and names its fitted arrays in
``_fitted_arrays``; ``save``/``load`` then work without further code.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from .._device import resolve_device
from ..errors import NotFittedError, ReaderError, ValidationError, did_you_mean

__all__ = ["BaseModel", "FORMAT_VERSION", "resolve_dtype"]

FORMAT_VERSION = 1
_DTYPES = {"float64": torch.float64, "float32": torch.float32, "tf32": torch.float32}
ModelT = TypeVar("ModelT", bound="BaseModel")


def resolve_dtype(dtype: Any, owner: str) -> tuple[torch.dtype, bool]:
    """``"float64" | "float32" | "tf32"`` (or a torch float dtype) -> (torch dtype, allow TF32)."""
    if isinstance(dtype, torch.dtype) and dtype in (torch.float64, torch.float32):
        return dtype, False
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype], dtype == "tf32"
    raise ValidationError(f"The 'dtype' parameter of {owner} must be one of {list(_DTYPES)}; got {dtype!r}."
                          f"{did_you_mean(str(dtype), _DTYPES)}")


class BaseModel:
    """Hyper-parameter handling, fitted-state checks, device resolution and .npz persistence."""

    _fitted_arrays: ClassVar[tuple[str, ...]] = ()
    _fitted_scalars: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters by name (scikit-learn protocol, so ``sklearn.base.clone`` works)."""
        del deep
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: ModelT, **params: Any) -> ModelT:
        """Set hyper-parameters by name; unknown names raise :class:`ValidationError`."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValidationError(f"{type(self).__name__} has no parameter {name!r}; valid: {valid}."
                                      f"{did_you_mean(name, valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ fitted state
    def _check_is_fitted(self) -> None:
        if not all(hasattr(self, name) for name in self._fitted_arrays):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(raster) first.")

    def _device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write hyper-parameters and fitted arrays to a ``.npz`` file, atomically.

        The file is written under a temporary name in the same folder and renamed, so a crash
        never leaves a half-written model behind.
        """
        self._check_is_fitted()
        target = Path(path)
        if target.suffix != ".npz":
            target = target.with_suffix(target.suffix + ".npz") if target.suffix else target.with_suffix(".npz")
        header = {"class": type(self).__name__, "format_version": FORMAT_VERSION,
                  "params": {k: _jsonable(v) for k, v in self.get_params().items()},
                  "scalars": {k: _jsonable(getattr(self, k)) for k in self._fitted_scalars}}
        arrays = {name: np.asarray(getattr(self, name)) for name in self._fitted_arrays}
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, _header=np.array(json.dumps(header)), **arrays)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls: type[ModelT], path: str | os.PathLike) -> ModelT:
        """Read a model written by :meth:`save`."""
        source = Path(path)
        if not source.is_file():
            raise ReaderError(f"model file {str(source)!r} does not exist.")
        try:
            with np.load(source, allow_pickle=False) as archive:
                header = json.loads(str(archive["_header"]))
                arrays = {name: archive[name] for name in archive.files if name != "_header"}
        except (OSError, ValueError, KeyError) as exc:
            raise ReaderError(f"model file {str(source)!r} is not a spikefield model archive ({exc}).") from exc
        if header.get("class") != cls.__name__:
            raise ReaderError(f"model file {str(source)!r} holds a {header.get('class')!r}, expected {cls.__name__!r}.")
        version = header.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ReaderError(f"model file {str(source)!r} has format_version {version!r}; this spikefield reads "
                              f"versions up to {FORMAT_VERSION} (upgrade spikefield).")
        model = cls(**{k: v for k, v in header["params"].items() if k in cls._param_names()})
        missing = [name for name in cls._fitted_arrays if name not in arrays]
        if missing:
            raise ReaderError(f"model file {str(source)!r} lacks fitted arrays {missing}.")
        for name in cls._fitted_arrays:
            setattr(model, name, arrays[name])
        for name, value in header.get("scalars", {}).items():
            setattr(model, name, value)
        return model


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # array-valued hyper-parameters (e.g. a user-given starting point)
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
