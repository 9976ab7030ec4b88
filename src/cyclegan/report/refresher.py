"""Rewriting RUN_DIR's report page in a background thread while training runs."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from ..config import ConfigError
from ..rundir import DiskFullError, RunDir
from .page import write_report


# ---------------------------------------------------------------- during training


class ReportRefresher:
    """Rewrites RUN_DIR/report.html in a background thread every `every_steps` steps.

    `maybe_refresh(step)` never blocks: it starts a refresh when `step` is a multiple of
    `every_steps` (0: never; only `close` writes one) and none is still running, else does nothing.
    An error in a refresh is reported once as a RuntimeWarning and never stops training.
    `close()` waits for a running refresh and writes the final report.
    """

    def __init__(self, run_dir: str | Path, every_steps: int, max_grids: int = 6, window: int | None = None):
        if every_steps < 0:
            raise ConfigError("report refresh interval must be >= 0")
        self.run_dir = Path(run_dir)
        self.every_steps = every_steps
        self.max_grids = max_grids
        self.window = window
        self._thread: threading.Thread | None = None
        self._warned = False
        self._warn_lock = threading.Lock()

    def _write(self) -> Path | None:
        try:
            return write_report(self.run_dir, max_grids=self.max_grids, window=self.window)
        except Exception as err:  # noqa: BLE001 - a report must never stop training
            with self._warn_lock:
                first, self._warned = not self._warned, True
            if first:
                warnings.warn(f"could not write {RunDir(self.run_dir).report_file}: {type(err).__name__}: {err} "
                              "(training goes on; further report errors are not shown)", RuntimeWarning, stacklevel=2)
            return None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def maybe_refresh(self, step: int) -> bool:
        """Start a refresh in the background if one is due and none is running; True when started."""
        if self.every_steps <= 0 or step % self.every_steps != 0 or self.running:
            return False
        self._thread = threading.Thread(target=self._write, name="cyclegan-report", daemon=True)
        self._thread.start()
        return True

    def close(self, final: bool = True) -> Path | None:
        """Wait for a running refresh; then (with `final`) write the report once more, in this thread."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self._write() if final else None

    def __enter__(self) -> "ReportRefresher":
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        # After a full disk there is no room for a last page either; the run's own error says why.
        self.close(final=not (exc_type is not None and issubclass(exc_type, DiskFullError)))


