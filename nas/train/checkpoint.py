"""Trained weights saved with the config and recipe beside them, written atomically."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.arch import ArchConfig, build_model
from nas.errors import UsageError
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
    """(model on CPU, config, the whole payload); a file that is not a checkpoint written by `save_checkpoint`
    (another program's .pt, a tensor, a text file) is refused with a UsageError naming it."""

    def refuse(why: str) -> UsageError:
        return UsageError(
            f"{path} is not a checkpoint written by nas train --save ({why})", owner="checkpoint", value=str(path)
        )

    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as err:  # torch.load's ways to refuse a file
        raise refuse(type(err).__name__) from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= payload.keys():
        raise refuse(f"it holds a {type(payload).__name__}, without a network's config and weights")
    config = ArchConfig.from_dict(payload["config"]).replace(memory_efficient=False)
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise refuse(f"its weights do not fit its config: {str(err).splitlines()[0]}") from None
    return model, config, payload
