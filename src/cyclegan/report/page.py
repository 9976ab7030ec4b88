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

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import ConfigError
from ..rundir import RunDir, write_text
from .scores import done_section, scores_section
from .read import (
    auto_window,
    loss_terms,
    read_loss_log,
    sample_grids,
    series_figure,
    loss_figure,
    thumbnail_jpeg,
)

EVAL_FIELDS = ("fid", "kid_mean", "kid_std", "cycle_l1", "n_fake", "n_real")
SAMPLE_BYTES_BUDGET = 800_000  # JPEG bytes of all thumbnails together; older grids are left out beyond it


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
    path = RunDir(run_dir).config_file
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return f'<p class="muted">no {_esc(path.name)}</p>', {}
    except (OSError, json.JSONDecodeError) as err:
        return f'<p class="muted">cannot read {_esc(path.name)}: {_esc(err)}</p>', {}
    if not isinstance(raw, dict):
        return f'<p class="muted">{_esc(path.name)} is not a JSON object</p>', {}
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
    path = RunDir(run_dir).metrics_file
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return f'<p class="muted">cannot read {_esc(path.relative_to(run_dir))}: {_esc(err)}</p>'
    if not isinstance(raw, dict):
        return f'<p class="muted">{_esc(path.relative_to(run_dir))} is not a JSON object</p>'
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    parts = [f'<p class="muted">from {_esc(path.relative_to(run_dir))}, written {when}</p><div class="sections">']
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
    log = read_loss_log(RunDir(run_dir).loss_log)
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
        uri, skipped = loss_figure(log, win)
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
        uri = series_figure(steps, log["lr"], "learning rate", 1, step_plot=True)
        body.append(f'<img class="plot" src="{uri}" alt="learning rate schedule">')
    else:
        body.append('<p class="muted">no learning rate logged yet</p>')
    body.append("</section>")

    body.append('<section id="timing"><h2>Time per step</h2>')
    if n and "sec_per_step" in log:
        uri = series_figure(steps, log["sec_per_step"], "seconds per step", win, step_plot=False)
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


def write_report(run_dir: str | Path, max_grids: int = 6, window: int | None = None) -> Path:
    """Write RUN_DIR/report.html atomically and return its path.

    `max_grids`: newest sample grids shown; `window`: log rows per sliding-window mean of the loss
    curves (None: about 1/40 of the log). Works on a fresh run (only config.json, no log yet) and
    while training appends to the log. Raises RunDirError when `run_dir` is not a run directory.
    """
    run_dir = Path(run_dir)
    run = RunDir(run_dir).require()
    if max_grids < 0:
        raise ConfigError("max_grids must be >= 0")
    page = render_report(run_dir, max_grids=max_grids, window=window)
    target = run.report_file
    write_text(target, page)
    return target


