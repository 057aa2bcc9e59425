"""Checkpoints: a state dict plus the config that built the model, saved atomically, loaded safely.

A checkpoint file is a plain dict of tensors and primitive values (never a pickled module), so it loads with
``torch.load(..., weights_only=True)``. Shipped checkpoints live in ``data/checkpoints/`` and are listed with
their sha256, size, producing command, device, wall time and quality in ``data/checkpoints/manifest.json``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from .config import data_dir
from .data import sha256_file  # noqa: F401  (re-exported: checkpoints.sha256_file)

FORMAT = "deepgen-checkpoint-v1"
PathLike = Union[str, Path]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted, or was made for another model. The message says what to do."""


def checkpoint_dir() -> Path:
    """``data/checkpoints``: where the shipped checkpoints and their manifest live."""
    return data_dir() / "checkpoints"


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    raise TypeError(f"config must be a dataclass instance or a dict, got {type(config).__name__}.")


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that an interruption leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: PathLike, model: nn.Module, config: Any = None, metadata: Optional[dict] = None,
                    half: bool = False) -> Path:
    """Save ``model``'s state dict, its ``config`` (dataclass or dict) and ``metadata`` to ``path`` atomically.

    Tensors are moved to the CPU first so that a checkpoint made on a GPU loads anywhere. ``half=True`` stores
    floating-point tensors as float16, halving the file; ``load_state_dict`` casts them back to the model's dtype
    on loading (rounding lesson 03's VAE changed its test loss by 0.001 nats; ``scripts/train_lesson03.py --half``
    measures the quality of the stored, rounded weights).
    """
    import io

    payload = {
        "format": FORMAT,
        "arch": type(model).__name__,
        "config": _config_dict(config),
        "state_dict": {k: _stored(v, half) for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}, **({"stored_dtype": "float16"} if half else {})),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    tensor = tensor.detach().cpu()
    return tensor.half() if half and tensor.is_floating_point() else tensor


def load_checkpoint(path: PathLike, expected_sha256: Optional[str] = None) -> dict:
    """Read a checkpoint file safely (``weights_only=True``) and return its dict.

    Raises :class:`CheckpointError` if the file is missing, does not match ``expected_sha256``, or is not a
    DeepGen checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path} does not exist. Train the model (the lesson shows how) or restore "
                              f"the file with `git checkout -- {path.name}`.")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(f"Checkpoint {path} is corrupted or was replaced: sha256 {actual[:12]}... but the "
                                  f"manifest expects {expected_sha256[:12]}.... Restore it with `git checkout`, or retrain.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"Checkpoint {path} could not be read ({type(exc).__name__}: {str(exc)[:200]}). "
                              "It is probably truncated or not a DeepGen checkpoint; restore or retrain it.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a DeepGen checkpoint (expected format {FORMAT!r}).")
    return payload


def load_into(model: nn.Module, payload_or_path: Union[dict, PathLike], expected_sha256: Optional[str] = None) -> dict:
    """Load a checkpoint's weights into ``model``, checking first that it was made for this architecture.

    Raises :class:`CheckpointError` that lists missing, unexpected and wrongly shaped parameters when the checkpoint
    belongs to another model or config; ``model`` is left unchanged in that case. Returns the checkpoint dict.
    """
    payload = payload_or_path if isinstance(payload_or_path, dict) else load_checkpoint(payload_or_path, expected_sha256)
    state = payload["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if payload.get("arch") != type(model).__name__ or missing or unexpected or shapes:
        lines = [f"This checkpoint was made for {payload.get('arch')} with config {payload.get('config')}, "
                 f"and does not fit this {type(model).__name__}."]
        if missing:
            lines.append(f"  missing from checkpoint: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            lines.append(f"  not in the model: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            lines.append("  different shapes: " + "; ".join(shapes[:5]))
        lines.append("Build the model from the checkpoint's config (payload['config']) or retrain it.")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state)
    return payload


# ----------------------------------------------------------------------------------------------------------
# The manifest of shipped checkpoints
# ----------------------------------------------------------------------------------------------------------
def read_manifest() -> dict:
    """The shipped-checkpoint manifest: ``{name: {file, sha256, bytes, lesson, command, device, wall_seconds, quality}}``."""
    path = checkpoint_dir() / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["checkpoints"]


def register_checkpoint(name: str, path: PathLike, *, lesson: str, command: str, device: str,
                        wall_seconds: float, quality: dict) -> dict:
    """Add or update ``name`` in the manifest with the file's sha256 and size (atomic write of the manifest)."""
    path = Path(path)
    entries = read_manifest()
    entries[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "lesson": lesson,
        "command": command,
        "device": device,
        "wall_seconds": round(float(wall_seconds), 1),
        "quality": quality,
        "torch": torch.__version__,
    }
    body = {"about": "Shipped checkpoints: state dict + config, load with weights_only=True. "
                     "Each entry names the command that reproduces it.",
            "checkpoints": dict(sorted(entries.items()))}
    atomic_write_bytes(checkpoint_dir() / "manifest.json", (json.dumps(body, indent=1) + "\n").encode())
    return entries[name]


def shipped_path(name: str) -> Path:
    """Path of shipped checkpoint ``name`` after verifying its sha256 against the manifest."""
    entries = read_manifest()
    if name not in entries:
        raise CheckpointError(f"No shipped checkpoint named {name!r}. Available: {sorted(entries)}.")
    path = checkpoint_dir() / entries[name]["file"]
    if not path.exists():
        raise CheckpointError(f"Shipped checkpoint {path} is missing; restore it with `git checkout -- data/checkpoints` "
                              f"or reproduce it with: {entries[name]['command']}")
    actual = sha256_file(path)
    if actual != entries[name]["sha256"]:
        raise CheckpointError(f"Shipped checkpoint {path} is corrupted (sha256 {actual[:12]}..., manifest "
                              f"{entries[name]['sha256'][:12]}...). Restore it or reproduce it with: {entries[name]['command']}")
    return path


def load_shipped(name: str, model: nn.Module) -> dict:
    """Verify shipped checkpoint ``name`` and load it into ``model``; returns the checkpoint dict."""
    return load_into(model, shipped_path(name))
