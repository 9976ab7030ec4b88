"""Optional TensorBoard logging (`cyclegan train --tensorboard`): losses, learning rate, sample grids.

Needs the `tensorboard` package (`pip install tensorboard`, or the `tensorboard` extra); view with
`tensorboard --logdir RUN_DIR/tensorboard`. Generator terms are logged under `loss_G/`, the
discriminators' under `loss_D/`, so TensorBoard shows them in two groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .config import ConfigError

MISSING = "--tensorboard needs the tensorboard package: pip install tensorboard"


class TensorBoardLogger:
    """Writes TensorBoard event files to `log_dir` (created if missing)."""

    def __init__(self, log_dir: str | Path, flush_secs: int = 30):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(MISSING) from None
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)

    def log_losses(self, step: int, losses: dict[str, float], lr: float | None = None,
                   sec_per_step: float | None = None) -> None:
        """One scalar per loss term (`loss_D/NAME` for names starting with "disc", else `loss_G/NAME`)."""
        for name, value in losses.items():
            group = "loss_D" if name.startswith("disc") else "loss_G"
            self._writer.add_scalar(f"{group}/{name}", float(value), step)
        if lr is not None:
            self._writer.add_scalar("train/lr", float(lr), step)
        if sec_per_step is not None:
            self._writer.add_scalar("train/sec_per_step", float(sec_per_step), step)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Scalars under their own tags (the scores of an evaluation during training, say)."""
        for tag, value in values.items():
            self._writer.add_scalar(tag, float(value), step)

    def log_image(self, step: int, tag: str, image: Image.Image) -> None:
        """An RGB image (a sample grid, say) under `tag`."""
        self._writer.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
