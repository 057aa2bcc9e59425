"""Checkpoints: a state dict plus the config that built the model, saved atomically, loaded safely.

A checkpoint file is a plain dict of tensors and primitive values (never a pickled module), so it
loads with ``torch.load(..., weights_only=True)``. Shipped checkpoints live in ``data/checkpoints/``
and are listed with their sha256, size, producing command, device, wall time and quality in
``data/checkpoints/manifest.json``.

Nothing is written until everything that goes into a file has been checked: :func:`save_checkpoint`
converts NumPy scalars, paths and devices to plain values, refuses anything else that would not load
with ``weights_only=True``, refuses NaN or infinite weights, and loads the new bytes back before it
replaces the old file; :func:`register_checkpoint` does the same for the manifest. A refused save
leaves the old file byte for byte as it was.
"""
from __future__ import annotations

import dataclasses
import difflib
import io
import json
import math
import os
import tempfile
from pathlib import Path, PurePath
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from torch import nn

from .config import data_dir
from .data import _root_hint
from .data import sha256_file  # noqa: F401  (re-exported: checkpoints.sha256_file)

FORMAT = "deepgen-checkpoint-v1"
PathLike = Union[str, Path]
_MANIFEST_KEYS = ("file", "sha256")


def _torch_load(source) -> Any:
    """``torch.load(source, map_location="cpu", weights_only=True)``, without the "TypedStorage is
    deprecated" warning that torch 2.1-2.3 print on every safe load (an internal matter of torch's
    loader, nothing a learner can act on)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated.*")
        return torch.load(source, map_location="cpu", weights_only=True)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted, or was made for another model. The message says what to
    do."""


def checkpoint_dir() -> Path:
    """``data/checkpoints``: where the shipped checkpoints and their manifest live."""
    return data_dir() / "checkpoints"


def _manifest_path() -> Path:
    return checkpoint_dir() / "manifest.json"


def _as_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise TypeError(f"{name} must be a file name (a str or pathlib.Path), got {path!r}.")
    return Path(path).expanduser()


# --------------------------------------------------------------------------------------------------
# What may go into a checkpoint or the manifest
# --------------------------------------------------------------------------------------------------
def _plain(value: Any, where: str, json_only: bool = False) -> Any:
    """``value`` as plain data that ``weights_only=True`` loading (or, with ``json_only``, JSON)
    accepts.

    NumPy scalars and arrays, one-element tensors, paths, devices and dtypes are converted; anything
    else that is not a number, string, list, tuple, dict or tensor is refused with a ``TypeError``
    naming ``where``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if json_only and not math.isfinite(value):
            raise ValueError(f"{where} is {value}; record a finite number "
                             "(measure a working model).")
        return value
    if isinstance(value, np.generic):
        return _plain(value.item(), where, json_only)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where} is a NumPy array of Python objects; store numbers instead.")
        return _plain(
            value.tolist() if json_only else torch.from_numpy(np.array(value)), where, json_only
        )
    if isinstance(value, torch.Tensor):
        if json_only or value.numel() == 1 and value.dim() == 0:
            if value.numel() != 1:
                raise TypeError(f"{where} is a tensor of shape {tuple(value.shape)}; store one "
                                "number (for example .mean().item()).")
            return _plain(value.item(), where, json_only)
        return value.detach().cpu().clone()
    if isinstance(value, (PurePath, torch.device, torch.dtype)):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), where, json_only)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) and (
                json_only or not isinstance(key, int) or isinstance(key, bool)
            ):
                raise TypeError(f"{where} has the key {key!r}; use strings as keys.")
            out[key] = _plain(item, f"{where}[{key!r}]", json_only)
        return out
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]", json_only) for i, item in enumerate(value)]
        return items if json_only or isinstance(value, list) else tuple(items)
    target = "the manifest (JSON)" if json_only else "a checkpoint"
    raise TypeError(f"{where} is of type {type(value).__name__}, which {target} cannot hold "
                    "safely; store numbers, strings, lists, dicts or tensors (for an optimiser, "
                    "its .state_dict()).")


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return _plain(dataclasses.asdict(config), "config")
    if isinstance(config, dict):
        return _plain(dict(config), "config")
    raise TypeError(f"config must be a dataclass instance or a dict, got {type(config).__name__}.")


def _non_finite(state: Dict[str, Any]) -> List[str]:
    """Names of the floating-point tensors in ``state`` that hold NaN or infinite values."""
    return [k for k, v in state.items() if isinstance(v, torch.Tensor) and (v.is_floating_point()
            or v.is_complex()) and not bool(torch.isfinite(v).all())]


def _check_payload(payload: Any, source: str, argument: bool = False) -> dict:
    """``payload`` if it is a well-formed DeepGen checkpoint with finite weights; else a clear error
    (a ``TypeError`` when ``argument`` says the learner passed the dict themselves)."""
    if isinstance(payload, dict) and "format" not in payload and payload \
            and all(isinstance(v, torch.Tensor) for v in payload.values()):
        error = TypeError if argument else CheckpointError
        raise error(f"{source} is a plain state dict (what model.state_dict() returns), not a "
                    f"DeepGen checkpoint (format {FORMAT!r}); "
                    "load it with model.load_state_dict(...).")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a DeepGen checkpoint (expected format {FORMAT!r}).")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{source} is damaged: it has no state dict. Restore it, or retrain.")
    bad = _non_finite(state)
    if bad:
        raise CheckpointError(f"{source} holds NaN or infinite weights (in "
                              f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}): it was "
                              "saved from a diverged run. Retrain it (a lower learning rate often "
                              "helps), or restore the shipped file.")
    return payload


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that an interruption leaves either the old file or the new one.

    Raises :class:`CheckpointError` naming the folder when it cannot be written (read-only, full, or
    ``path`` is a folder); the old file is then unchanged.
    """
    path = _as_path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file name inside it, such as "
                              f"{path / 'model.pt'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CheckpointError(f"Cannot write {path}: {exc.strerror or exc} in {path.parent}. Save "
                              "to a folder you can write to "
                              "(for example your home folder).") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CheckpointError(f"Cannot write {path}: {exc.strerror or exc}. The old "
                                  "file, if any, is unchanged; free some space or save to a "
                                  "folder you can write to.") from None
        raise


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    config: Any = None,
    metadata: Optional[dict] = None,
    half: bool = False,
) -> Path:
    """Save ``model``'s state dict, its ``config`` (dataclass or dict) and ``metadata`` to ``path``
    atomically.

    Tensors are moved to the CPU first so that a checkpoint made on a GPU loads anywhere.
    ``half=True`` stores floating-point tensors as float16, halving the file; ``load_state_dict``
    casts them back to the model's dtype on loading (rounding lesson 03's VAE changed its test loss
    by 0.001 nats; ``scripts/train_lesson03.py --half`` measures the quality of the stored, rounded
    weights).

    ``config`` and ``metadata`` may hold numbers, strings, lists, dicts and tensors; NumPy scalars,
    paths and devices are converted to plain values. Raises ``TypeError`` for anything else and
    :class:`CheckpointError` for NaN or infinite weights, before the file at ``path`` is touched.
    """
    path = _as_path(path)
    if not isinstance(model, nn.Module):
        hint = (" (a state dict: pass the model itself)" if isinstance(model, dict) else "")
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}{hint}.")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}.")
    state = {}
    for key, value in model.state_dict().items():
        state[key] = _stored(value, half) if isinstance(value, torch.Tensor) else _plain(value, key)
    bad = _non_finite(state)
    if bad:
        why = (
            "are beyond float16's range (65504); save with half=False"
            if half and not _non_finite({k: model.state_dict()[k] for k in bad})
            else "are NaN or infinite: the training diverged"
        )
        raise CheckpointError(f"Refusing to save {path.name}: the weights in {', '.join(bad[:3])} "
                              f"{why}. The file on disk is unchanged.")
    payload = {
        "format": FORMAT,
        "arch": type(model).__name__,
        "config": _config_dict(config),
        "state_dict": state,
        "metadata": dict(
            _plain(metadata or {}, "metadata"), **({"stored_dtype": "float16"} if half else {})
        ),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    try:  # the guarantee: what is written loads back with weights_only=True
        _torch_load(io.BytesIO(data))
    except Exception as exc:
        raise CheckpointError(f"Refusing to save {path.name}: it would not load safely "
                              f"({type(exc).__name__}). Store only numbers, strings, lists, "
                              "dicts and tensors.") from None
    atomic_write_bytes(path, data)
    return path


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    tensor = tensor.detach().cpu()
    return tensor.half() if half and tensor.is_floating_point() else tensor


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def round_to_half(model: nn.Module) -> nn.Module:
    """Round ``model``'s floating-point weights and buffers to float16 and back, in place.

    Training scripts call it before measuring a checkpoint saved with ``half=True``, so that the
    quality recorded in the manifest is that of exactly the weights that are stored.
    """
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def load_checkpoint(path: PathLike, expected_sha256: Optional[str] = None) -> dict:
    """Read a checkpoint file safely (``weights_only=True``) and return its dict.

    Raises :class:`CheckpointError` if the file is missing, does not match ``expected_sha256``, is
    not a DeepGen checkpoint, or holds NaN or infinite weights.
    """
    path = _as_path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path} does not exist. Train the model "
                              "(the lesson shows how) or restore the file with "
                              f"`git checkout -- {path.name}`.")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass the path of a .pt "
                              "file in it.")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(f"Checkpoint {path} is corrupted or was replaced: sha256 "
                                  f"{actual[:12]}... but the manifest expects "
                                  f"{str(expected_sha256)[:12]}.... Restore it with "
                                  "`git checkout`, or retrain.")
    try:
        payload = _torch_load(path)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise CheckpointError(f"Checkpoint {path} could not be read ({type(exc).__name__}: "
                              f"{first}). It is probably truncated or not a DeepGen checkpoint; "
                              "restore or retrain it.") from None
    return _check_payload(payload, f"Checkpoint {path}")


def load_into(model: nn.Module, payload_or_path: Union[dict, PathLike],
              expected_sha256: Optional[str] = None) -> dict:
    """Load a checkpoint's weights into ``model``, checking first that it was made for this
    architecture.

    ``payload_or_path`` is a checkpoint file or the dict :func:`load_checkpoint` returned (for a
    plain state dict use ``model.load_state_dict``). Raises :class:`CheckpointError` that lists
    missing, unexpected and wrongly shaped parameters when the checkpoint belongs to another model
    or config; ``model`` is left unchanged in that case. Returns the checkpoint dict.
    """
    if not isinstance(model, nn.Module):
        raise TypeError("model must be a torch.nn.Module to load weights into, "
                        f"got {type(model).__name__}.")
    if isinstance(payload_or_path, dict):
        payload = _check_payload(payload_or_path, "The dict given to load_into", argument=True)
    elif isinstance(payload_or_path, (str, os.PathLike)):
        payload = load_checkpoint(payload_or_path, expected_sha256)
    else:
        raise TypeError("load_into takes a checkpoint path or the dict load_checkpoint returns, "
                        f"got {type(payload_or_path).__name__}.")
    state = payload["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state))
              if isinstance(state[k], torch.Tensor) and isinstance(own[k], torch.Tensor)
              and state[k].shape != own[k].shape]
    if payload.get("arch") != type(model).__name__ or missing or unexpected or shapes:
        lines = [f"This checkpoint was made for {payload.get('arch')} with config "
                 f"{payload.get('config')}, and does not fit this {type(model).__name__}."]
        if missing:
            lines.append("  missing from checkpoint: "
                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            lines.append("  not in the model: "
                         f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            lines.append("  different shapes: " + "; ".join(shapes[:5]))
        lines.append("Build the model from the checkpoint's config (payload['config']) "
                     "or retrain it.")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state)
    return payload


# --------------------------------------------------------------------------------------------------
# The manifest of shipped checkpoints
# --------------------------------------------------------------------------------------------------
def read_manifest() -> dict:
    """The shipped-checkpoint manifest: ``{name: {file, sha256, bytes, lesson, command, device,
    wall_seconds, quality}}``; empty when the checkpoint folder has no manifest yet.

    Raises :class:`CheckpointError` naming the file and the fix when the manifest is damaged.
    """
    path = _manifest_path()
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["checkpoints"]
        if not isinstance(entries, dict):
            raise TypeError("'checkpoints' is not a dict")
        for name, entry in entries.items():
            if not isinstance(entry, dict) or any(k not in entry for k in _MANIFEST_KEYS):
                raise KeyError(f"entry {name!r} lacks file or sha256")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"The checkpoint manifest {path} is damaged ({type(exc).__name__}: "
                              f"{str(exc)[:80]}); restore it with "
                              "`git checkout -- data/checkpoints/manifest.json`.") from None
    return entries


def register_checkpoint(name: str, path: PathLike, *, lesson: str, command: str, device: str,
                        wall_seconds: float, quality: dict) -> dict:
    """Add or update ``name`` in the manifest with the file's sha256 and size (atomic write of the
    manifest).

    ``path`` must be a readable checkpoint inside :func:`checkpoint_dir`; ``quality`` a dict of
    names to finite numbers (NumPy scalars and one-element tensors are converted) or strings.
    Everything is checked before the manifest is touched.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    path = _as_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Cannot register {name!r}: checkpoint file {path} does not exist; "
                                "save it first with save_checkpoint.")
    if path.resolve().parent != checkpoint_dir().resolve():
        raise ValueError(f"Cannot register {path}: shipped checkpoints must be saved in "
                         f"{checkpoint_dir()} (the manifest records only the file name).")
    load_checkpoint(path)  # never register a file that does not load
    for arg, value in (("lesson", lesson), ("command", command), ("device", device)):
        if not isinstance(value, str):
            raise TypeError(f"{arg} must be a string, got {type(value).__name__}.")
    wall = _plain(wall_seconds, "wall_seconds", json_only=True)
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or wall < 0:
        raise ValueError(f"wall_seconds must be a number of seconds >= 0, got {wall_seconds!r}.")
    if not isinstance(quality, dict):
        raise TypeError("quality must be a dict such as {'test_accuracy': 0.99}, "
                        f"got {type(quality).__name__}.")
    quality = _plain(quality, "quality", json_only=True)
    entries = read_manifest()
    entries[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "lesson": lesson,
        "command": command,
        "device": device,
        "wall_seconds": round(float(wall), 1),
        "quality": quality,
        "torch": torch.__version__,
    }
    body = {"about": "Shipped checkpoints: state dict + config, load with weights_only=True. "
                     "Each entry names the command that reproduces it.",
            "checkpoints": dict(sorted(entries.items()))}
    atomic_write_bytes(
        _manifest_path(), (json.dumps(body, indent=1, allow_nan=False) + "\n").encode()
    )
    return entries[name]


def shipped_path(name: str) -> Path:
    """Path of shipped checkpoint ``name`` after verifying its sha256 against the manifest."""
    manifest = _manifest_path()
    if not manifest.exists():
        fix = _root_hint(checkpoint_dir()) or " Restore it with `git checkout -- data/checkpoints`."
        raise CheckpointError(f"The checkpoint manifest {manifest} is missing.{fix}")
    entries = read_manifest()
    if not isinstance(name, str) or name not in entries:
        close = difflib.get_close_matches(str(name), list(entries), n=1)
        if close:                               # the likely fix, without a wall of names
            raise CheckpointError(f"No shipped checkpoint named {name!r}. Did you mean "
                                  f"{close[0]!r}? (checkpoints.read_manifest() lists all "
                                  f"{len(entries)}.)")
        raise CheckpointError(f"No shipped checkpoint named {name!r}. Available: "
                              f"{', '.join(sorted(entries))}.")
    entry = entries[name]
    path = checkpoint_dir() / entry["file"]
    how = f"reproduce it with: {entry['command']}" if entry.get("command") else "retrain it"
    if not path.is_file():
        raise CheckpointError(f"Shipped checkpoint {path} is missing; restore it with "
                              f"`git checkout -- data/checkpoints` or {how}")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise CheckpointError(f"Shipped checkpoint {path} is corrupted (sha256 {actual[:12]}..., "
                              f"manifest {str(entry['sha256'])[:12]}...). Restore it or {how}")
    return path


def load_shipped(name: str, model: nn.Module) -> dict:
    """Verify shipped checkpoint ``name`` and load it into ``model``; returns the checkpoint
    dict."""
    return load_into(model, shipped_path(name))
