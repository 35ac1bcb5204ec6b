"""Trained weights saved with the config and recipe beside them, written atomically."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import ArchConfig, build_model
from nas.train.recipe import Recipe


def save_checkpoint(
    path: Path, *, model: nn.Module, config: ArchConfig, recipe: Recipe, extra: dict[str, Any] | None = None
) -> None:
    """Weights with the config and recipe beside them; written to a temporary file, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": config.to_dict(),
        "recipe": dataclasses.asdict(recipe),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:  # a full disk, a folder in the way: no half-written file is left behind
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> tuple[nn.Module, ArchConfig, dict[str, Any]]:
    """(model on CPU, config, the whole payload)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = ArchConfig.from_dict(payload["config"]).replace(memory_efficient=False)
    model = build_model(config)
    model.load_state_dict(payload["state_dict"], strict=True)
    return model, config, payload
