"""Progress of a training run: a bar on a terminal, plain lines in logs."""

from __future__ import annotations

import math
import sys
from typing import Any

from nas.train.results import EpochMetrics


class Progress:
    """A tqdm bar on a terminal; one plain line per epoch otherwise (logs, CI, workers)."""

    def __init__(self, enabled: bool | None, epochs: int, steps: int, label: str) -> None:
        tty = sys.stderr.isatty()
        self.enabled = tty if enabled is None else enabled
        self.bar: Any = None
        self.label = label
        if self.enabled and tty:
            from tqdm import tqdm

            self.bar = tqdm(total=epochs * steps, desc=label, unit="step", leave=False, file=sys.stderr)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update()

    def epoch(self, m: EpochMetrics, epochs: int) -> None:
        text = (
            f"epoch {m.epoch}/{epochs} loss {m.train_loss:.4f} train {m.train_accuracy:.2%} "
            f"{'no val' if math.isnan(m.val_accuracy) else f'val {m.val_accuracy:.2%}'} "
            f"({m.seconds:.1f}s, {m.images_per_second:,.0f} img/s)"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        elif self.enabled:
            print(f"{self.label}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
