"""RUN_DIR/report.html: one self-contained page summarising a run.

The page holds the config (a table per section), the loss curves as sliding-window averages
(generators' terms and discriminators' terms in separate panels), the learning-rate schedule,
the time per step, the newest sample grids as small JPEG thumbnails and, when
RUN_DIR/eval/metrics.json exists, the evaluation results. Every image is embedded as a base64
data URI, so the file can be copied or mailed alone and opening it fetches nothing.

The page stays small however long the run: only the newest `max_grids` grids are shown, each
downscaled to at most THUMB_SIZE and JPEG-encoded, within SAMPLE_BYTES_BUDGET in all (the
authors' index.html keeps every grid ever written and grows until writing it stalls training).

`write_report` is cheap enough to call during training (see `ReportRefresher`, which runs it in
a background thread): plots use matplotlib's object API (`matplotlib.figure.Figure`, Agg
canvas, no pyplot state), long logs are thinned before plotting, and thumbnails are cached by
file, size and modification time.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import os
import re
import sys
import threading
import time
import warnings
import webbrowser
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .atomic import write_text_atomic
from .config import ConfigError
from .report_eval import done_section, scores_section
from .training.checkpoint import CheckpointError

REPORT_FILE = "report.html"
LOG_FILE = "loss_log.csv"
BOOKKEEPING_COLUMNS = ("step", "epoch", "lr", "sec_per_step")
EVAL_FIELDS = ("fid", "kid_mean", "kid_std", "cycle_l1", "n_fake", "n_real")

THUMB_SIZE = (360, 720)  # a grid is scaled down to fit this box (width, height), never up
JPEG_QUALITY = 80
SAMPLE_BYTES_BUDGET = 800_000  # JPEG bytes of all thumbnails together; older grids are left out beyond it
MAX_PLOT_POINTS = 1000  # longer curves are thinned (after smoothing) before drawing
_SAMPLE_RE = re.compile(r"^step_(\d+)\.png$")


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
    """(step, path) of RUN_DIR/samples/step_NNNNNNNN.png, oldest first."""
    folder = Path(run_dir) / "samples"
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        m = _SAMPLE_RE.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


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


def _loss_figure(log: dict[str, np.ndarray], window: int) -> tuple[str, list[str]]:
    fig, (ax_g, ax_d) = _figure(12, 4.2, ncols=2)
    steps = log["step"]
    gen_terms, disc_terms = loss_terms(log)
    skipped = plot_terms(ax_g, steps, log, gen_terms, window, "generators")
    skipped += plot_terms(ax_d, steps, log, disc_terms, window, "discriminators")
    ax_g.set_ylabel(f"loss (mean of {window} log rows)" if window > 1 else "loss")
    return _png_data_uri(fig), skipped


def _series_figure(steps: np.ndarray, values: np.ndarray, ylabel: str, window: int, step_plot: bool) -> str:
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


# ---------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1em;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:.9em;margin:.3em 1.2em .8em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.sections{display:flex;flex-wrap:wrap;align-items:flex-start}.muted{color:#777;font-size:.9em}
img.plot{max-width:100%;height:auto}.row{display:flex;flex-wrap:wrap;gap:0 1.5em}
figure{margin:0 1em 1em 0;display:inline-block;vertical-align:top}figcaption{font-size:.9em;color:#555}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "&mdash;"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _esc(json.dumps(value))
    return _esc(value)


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append(f"<tr><th>{_esc(head[0])}</th><th>{_esc(head[1])}</th></tr>")
    for key, value in rows:
        num = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        out.append(f"<tr><th>{_esc(key)}</th><td{num}>{_fmt(value)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _config_section(run_dir: Path) -> tuple[str, dict]:
    path = run_dir / "config.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return '<p class="muted">no config.json</p>', {}
    except (OSError, json.JSONDecodeError) as err:
        return f'<p class="muted">cannot read config.json: {_esc(err)}</p>', {}
    if not isinstance(raw, dict):
        return '<p class="muted">config.json is not a JSON object</p>', {}
    parts = ['<div class="sections">']
    loose = [(k, v) for k, v in raw.items() if not isinstance(v, dict)]
    for section, fields in raw.items():
        if isinstance(fields, dict):
            parts.append(f'<div id="config-{_esc(section)}"><h3>{_esc(section)}</h3>{_table(list(fields.items()))}</div>')
    if loose:
        parts.append(f"<div><h3>other</h3>{_table(loose)}</div>")
    parts.append("</div>")
    return "".join(parts), raw


def _eval_section(run_dir: Path) -> str | None:
    path = run_dir / "eval" / "metrics.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return f'<p class="muted">cannot read eval/metrics.json: {_esc(err)}</p>'
    if not isinstance(raw, dict):
        return '<p class="muted">eval/metrics.json is not a JSON object</p>'
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    parts = [f'<p class="muted">from eval/metrics.json, written {when}</p><div class="sections">']
    for direction, scores in raw.items():
        if not isinstance(scores, dict):
            continue
        rows = [(k, scores.get(k)) for k in EVAL_FIELDS] + [(k, v) for k, v in scores.items() if k not in EVAL_FIELDS
                                                            and k != "detectors"]  # shown in "Is it done?"
        parts.append(f'<div id="eval-{_esc(direction)}"><h3>{_esc(direction)}</h3>{_table(rows, ("metric", "value"))}</div>')
    parts.append("</div>")
    return "".join(parts)


def _samples_section(run_dir: Path, max_grids: int) -> str:
    grids = sample_grids(run_dir)
    if not grids or max_grids == 0:
        return f'<p class="muted">{"no sample grids yet" if not grids else "sample grids left out (max_grids=0)"}</p>'
    shown, used, notes = [], 0, []
    for step, path in reversed(grids[-max_grids:]):  # newest first
        try:
            data, (w, h) = thumbnail_jpeg(path)
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # e.g. being written right now
            notes.append(f"{path.name}: {err}")
            continue
        if shown and used + len(data) > SAMPLE_BYTES_BUDGET:
            notes.append(f"older grids left out to keep this page small ({used // 1024} KiB of thumbnails)")
            break
        used += len(data)
        uri = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        shown.append(
            f'<figure><a href="samples/{_esc(path.name)}"><img class="grid" src="{uri}" width="{w}" height="{h}" '
            f'alt="samples at step {step}"></a><figcaption>step {step}</figcaption></figure>'
        )
    head = (f'<p class="muted">newest {len(shown)} of {len(grids)} grids (click for full size; rows: '
            "real A | G(A) | F(G(A)) | F(A), then real B | F(B) | G(F(B)) | G(B))</p>")
    tail = "".join(f'<p class="muted">{_esc(n)}</p>' for n in notes)
    return head + '<div class="row">' + "".join(shown) + "</div>" + tail


def _summary(log: dict[str, np.ndarray], config: dict, n_grids: int) -> str:
    rows: list[tuple[str, Any]] = []
    run = config.get("run", {}) if isinstance(config.get("run"), dict) else {}
    if run.get("name"):
        rows.append(("run", run["name"]))
    n = len(log.get("step", ()))
    if n:
        rows += [("step", int(log["step"][-1]))]
        if "epoch" in log:
            optim = config.get("optim", {}) if isinstance(config.get("optim"), dict) else {}
            total = (optim.get("n_epochs") or 0) + (optim.get("n_epochs_decay") or 0)
            rows.append(("epoch", f"{int(log['epoch'][-1])} of {total}" if total else int(log["epoch"][-1])))
        if "lr" in log:
            rows.append(("learning rate", float(log["lr"][-1])))
        if "sec_per_step" in log:
            tail = log["sec_per_step"][-50:]
            rows.append(("seconds per step (median of the last rows)", float(np.median(tail))))
        rows.append(("log rows", n))
    else:
        rows.append(("step", "no loss rows logged yet"))
    rows.append(("sample grids", n_grids))
    rows.append(("report written", time.strftime("%Y-%m-%d %H:%M:%S")))
    return _table(rows)


def render_report(run_dir: Path, max_grids: int = 6, window: int | None = None) -> str:
    """The report page of `run_dir` as an HTML string (see `write_report`)."""
    run_dir = Path(run_dir)
    config_html, config = _config_section(run_dir)
    log = read_loss_log(run_dir / LOG_FILE)
    steps = log.get("step", np.zeros(0))
    n = len(steps)
    win = auto_window(n) if window is None else max(1, int(window))
    name = (config.get("run") or {}).get("name") if isinstance(config.get("run"), dict) else None
    title = f"CycleGAN run {name or run_dir.name}"

    body = [f"<h1>{_esc(title)}</h1>", f'<p class="muted">{_esc(run_dir.resolve())}</p>',
            '<section id="done"><h2>Is it done?</h2>', done_section(run_dir), "</section>",
            '<section id="summary"><h2>Summary</h2>', _summary(log, config, len(sample_grids(run_dir))), "</section>"]

    body.append('<section id="losses"><h2>Losses</h2>')
    if n and any(loss_terms(log)):
        uri, skipped = _loss_figure(log, win)
        body.append(f'<img class="plot" src="{uri}" alt="loss curves">')
        note = (f"Sliding-window mean over {win} log rows (faint: each row)" if win > 1 else "Each log row")
        note += "; each row is itself the mean over the steps since the previous row."
        if skipped:
            note += f" Not drawn (always 0, i.e. disabled): {', '.join(skipped)}."
        body.append(f'<p class="muted">{_esc(note)}</p>')
    else:
        body.append('<p class="muted">no loss rows logged yet</p>')
    body.append("</section>")
    body.append('<section id="scores"><h2>Scores during training</h2>' + scores_section(run_dir) + "</section>")

    body.append('<div class="row">')
    body.append('<section id="lr"><h2>Learning rate</h2>')
    if n and "lr" in log:
        uri = _series_figure(steps, log["lr"], "learning rate", 1, step_plot=True)
        body.append(f'<img class="plot" src="{uri}" alt="learning rate schedule">')
    else:
        body.append('<p class="muted">no learning rate logged yet</p>')
    body.append("</section>")

    body.append('<section id="timing"><h2>Time per step</h2>')
    if n and "sec_per_step" in log:
        uri = _series_figure(steps, log["sec_per_step"], "seconds per step", win, step_plot=False)
        body.append(f'<img class="plot" src="{uri}" alt="seconds per step">')
    else:
        body.append('<p class="muted">no timings logged yet</p>')
    body.append("</section></div>")

    body.append('<section id="samples"><h2>Samples</h2>')
    body.append(_samples_section(run_dir, max_grids))
    body.append("</section>")

    body.append('<section id="evaluation"><h2>Evaluation</h2>')
    body.append(_eval_section(run_dir) or '<p class="muted">not evaluated yet: run '
                f"<code>cyclegan evaluate {_esc(run_dir)}</code></p>")
    body.append("</section>")

    body.append('<section id="config"><h2>Config</h2>')
    body.append(config_html)
    body.append("</section>")

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory: it does not exist (check the path)")
    if not (run_dir / "config.json").is_file() and not (run_dir / LOG_FILE).is_file():
        raise CheckpointError(f"{run_dir} is not a run directory: no config.json or {LOG_FILE} in it")


def write_report(run_dir: str | Path, max_grids: int = 6, window: int | None = None) -> Path:
    """Write RUN_DIR/report.html atomically and return its path.

    `max_grids`: newest sample grids shown; `window`: log rows per sliding-window mean of the loss
    curves (None: about 1/40 of the log). Works on a fresh run (only config.json, no log yet) and
    while training appends to the log. Raises CheckpointError when `run_dir` is not a run directory.
    """
    run_dir = Path(run_dir)
    _check_run_dir(run_dir)
    if max_grids < 0:
        raise ConfigError("max_grids must be >= 0")
    page = render_report(run_dir, max_grids=max_grids, window=window)
    target = run_dir / REPORT_FILE
    write_text_atomic(target, page)
    return target


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
                warnings.warn(f"could not write {self.run_dir / REPORT_FILE}: {type(err).__name__}: {err} "
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

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- command line


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `cyclegan report RUN_DIR [--max-grids N] [--window N] [--open]` to a sub-command set."""
    p = subparsers.add_parser(
        "report",
        help="write RUN_DIR/report.html: losses, learning rate, timing, samples, evaluation, config",
        description="Write RUN_DIR/report.html, one self-contained page (images embedded) with the run's config, "
        "loss curves (sliding-window means), learning-rate schedule, time per step, newest sample grids and "
        "evaluation results (RUN_DIR/eval/metrics.json). Training refreshes it every --report-freq steps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory written by `cyclegan train`")
    p.add_argument("--max-grids", type=int, default=6, help="newest sample grids shown")
    p.add_argument("--window", type=int, default=None,
                   help="log rows per sliding-window mean of the loss curves (default: about 1/40 of the log)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(func=_cmd_report)
    return p


def _cmd_report(args: argparse.Namespace) -> int:
    if args.max_grids < 0:
        raise ConfigError("--max-grids must be >= 0")
    if args.window is not None and args.window < 1:
        raise ConfigError("--window must be at least 1")
    path = write_report(args.run, max_grids=args.max_grids, window=args.window)
    print(path)
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print(f"no web browser found to open it; open {path.resolve().as_uri()} in one", file=sys.stderr)
    return 0
