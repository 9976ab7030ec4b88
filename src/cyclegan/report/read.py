"""Reading a run for its report: the loss log, the sample grids (as small JPEG thumbnails), and
the plots drawn from them.

Plots use matplotlib's object API (`matplotlib.figure.Figure`, Agg canvas, no pyplot state),
so they are safe from the refresher's thread; long logs are thinned before plotting, and
thumbnails are cached by file, size and modification time.
"""

from __future__ import annotations

import base64
import csv
import io
import math
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from ..rundir import RunDir

BOOKKEEPING_COLUMNS = ("step", "epoch", "lr", "sec_per_step")
THUMB_SIZE = (360, 720)  # a grid is scaled down to fit this box (width, height), never up
JPEG_QUALITY = 80
MAX_PLOT_POINTS = 1000  # longer curves are thinned (after smoothing) before drawing


# ---------------------------------------------------------------- reading a run


def read_loss_log(path: Path) -> dict[str, np.ndarray]:
    """The columns of loss_log.csv as float arrays, keyed by header name (empty when there is no log).

    The loss columns are whatever the run's method logs (CycleGAN: gan_ab ... disc_b). Only complete lines count: a last line without its newline (being appended right now, or cut
    by a crash) is dropped, and so is any row with a missing or unparseable field.
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError):
        text = ""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    columns: dict[str, list[float]] = {name: [] for name in header}
    if header:
        index = {name: i for i, name in enumerate(header)}
        for row in reader:
            if len(row) != len(header):
                continue
            try:
                values = {name: float(row[i]) for name, i in index.items()}
            except ValueError:
                continue
            for name in index:
                columns[name].append(values[name])
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def loss_terms(log: dict[str, np.ndarray]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The generator-side and discriminator-side loss columns of a log, in log order."""
    terms = [name for name in log if name not in BOOKKEEPING_COLUMNS]
    disc = tuple(t for t in terms if t.startswith("disc"))
    return tuple(t for t in terms if t not in disc), disc


def sliding_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average of the last `window` values (fewer at the start); same length."""
    if window <= 1 or len(values) == 0:
        return values.astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def auto_window(n_rows: int) -> int:
    """Default smoothing window, in log rows: about 1/40 of the log, between 1 and 100."""
    return max(1, min(n_rows // 40, 100))


def sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's sample grids, oldest first."""
    return RunDir(run_dir).sample_files()


_thumb_cache: dict[tuple[str, int, int, tuple[int, int], int], tuple[bytes, tuple[int, int]]] = {}
_thumb_lock = threading.Lock()


def thumbnail_jpeg(path: Path, size: tuple[int, int] = THUMB_SIZE, quality: int = JPEG_QUALITY) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of the image at `path` scaled down to fit `size`, and the thumbnail's (width, height).

    Cached by path, modification time and file size, so a refresh re-encodes only new grids.
    """
    st = os.stat(path)
    key = (str(path), st.st_mtime_ns, st.st_size, tuple(size), quality)
    with _thumb_lock:
        hit = _thumb_cache.get(key)
    if hit is not None:
        return hit
    with Image.open(path) as img:
        img.load()
        rgb = img.convert("RGB")
    rgb.thumbnail(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=quality, optimize=True)
    result = (buf.getvalue(), rgb.size)
    with _thumb_lock:
        if len(_thumb_cache) >= 256:
            _thumb_cache.clear()
        _thumb_cache[key] = result
    return result


# ---------------------------------------------------------------- plots


def _figure(width: float, height: float, ncols: int = 1):
    # The object API, not pyplot: no global figure registry, no GUI backend, safe from a thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins: constrained/tight layout would measure every text box, doubling the cost.
    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.subplots_adjust(left=0.95 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.35 / height,
                        wspace=0.9 / (width / ncols))
    return fig, list(axes)


def _png_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thin(x: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    if len(x) <= MAX_PLOT_POINTS:
        return (x, *ys)
    stride = math.ceil(len(x) / MAX_PLOT_POINTS)
    keep = np.arange(len(x) - 1, -1, -stride)[::-1]  # always keep the newest point
    return (x[keep], *(y[keep] for y in ys))


def plot_terms(ax, steps: np.ndarray, log: dict[str, np.ndarray], terms: tuple[str, ...], window: int,
                title: str) -> list[str]:
    """Draw each term (raw faintly, smoothed solid); return the terms left out for being always 0."""
    skipped = []
    for i, name in enumerate(terms):
        values = log.get(name)
        if values is None or len(values) != len(steps):
            continue
        if not np.any(values):
            skipped.append(name)
            continue
        color = f"C{i}"
        x, raw, smooth = _thin(steps, values, sliding_mean(values, window))
        if window > 1:
            ax.plot(x, raw, color=color, alpha=0.2, linewidth=0.8)
        # markers keep a short log (a smoke run: one or two rows) visible
        ax.plot(x, smooth, color=color, linewidth=1.5, label=name, marker="o" if len(x) < 20 else None, markersize=3)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncols=2)
    return skipped


def loss_figure(log: dict[str, np.ndarray], window: int) -> tuple[str, list[str]]:
    fig, (ax_g, ax_d) = _figure(12, 4.2, ncols=2)
    steps = log["step"]
    gen_terms, disc_terms = loss_terms(log)
    skipped = plot_terms(ax_g, steps, log, gen_terms, window, "generators")
    skipped += plot_terms(ax_d, steps, log, disc_terms, window, "discriminators")
    ax_g.set_ylabel(f"loss (mean of {window} log rows)" if window > 1 else "loss")
    return _png_data_uri(fig), skipped


def series_figure(steps: np.ndarray, values: np.ndarray, ylabel: str, window: int, step_plot: bool) -> str:
    fig, (ax,) = _figure(6, 3)
    x, raw, smooth = _thin(steps, values, sliding_mean(values, window))
    if len(x) < 20:
        ax.plot(x, raw, color="C0", linewidth=1.5, marker="o", markersize=3)
    elif step_plot:
        ax.step(x, raw, where="post", color="C0", linewidth=1.5)
    else:
        ax.plot(x, raw, color="C0", alpha=0.3 if window > 1 else 1.0, linewidth=0.8)
        if window > 1:
            ax.plot(x, smooth, color="C0", linewidth=1.5, label=f"mean of {window} rows")
            ax.legend(fontsize="small")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return _png_data_uri(fig)


