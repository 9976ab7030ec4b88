"""The report's parts about evaluation during training: the "Is it done?" summary and the score curves.

Both read what training writes (RUN_DIR/eval_log.csv, RUN_DIR/checkpoints/best/best.json) and,
without readings, the failure checks of `cyclegan evaluate RUN` (RUN_DIR/eval/metrics.json).
`report.render_report` calls `done_section` and `scores_section`; nothing else here is needed by it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .detectors import TITLES
from .training.evaluation import EVAL_LOG, read_best, read_rows

TREND_WINDOW = 4  # readings the trend looks at: the newest against the (up to) three before it


def mean_kid_by_step(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean KID of the two directions, mean of their KID stds), for steps with both directions."""
    by_step: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_step.setdefault(int(r["step"]), {})[r["direction"]] = r
    steps = sorted(s for s, d in by_step.items() if len(d) == 2)
    kid = [np.mean([float(by_step[s][d]["kid_mean"]) for d in ("AtoB", "BtoA")]) for s in steps]
    std = [np.mean([float(by_step[s][d]["kid_std"]) for d in ("AtoB", "BtoA")]) for s in steps]
    return np.array(steps, dtype=np.int64), np.array(kid), np.array(std)


def kid_trend(kids: np.ndarray, stds: np.ndarray) -> str:
    """"improving", "flat" or "worse": the newest mean KID against the best of the readings before
    it in the window, with the newest reading's KID std (spread over subsets) as the noise margin."""
    if len(kids) < 2:
        return "too early"
    earlier = kids[-TREND_WINDOW:-1]
    margin = float(stds[-1])
    if kids[-1] < earlier.min() - margin:
        return "improving"
    if kids[-1] > earlier.min() + margin:
        return "worse"
    return "flat"


TREND_TEXT = {
    "too early": "one reading so far: a trend needs two",
    "improving": "still improving: the newest mean KID is below every one of the {n} readings before it, by more "
                 "than its std. Keep training.",
    "flat": "flat: the newest mean KID is within its std of the best of the {n} readings before it. If it stays flat "
            "while the learning rate decays, the run is about done.",
    "worse": "getting worse: the newest mean KID is above the best of the {n} readings before it by more than its std. "
             "Look at the failure checks and the samples; checkpoints/best keeps the best so far.",
}


def _latest_checks(run_dir: Path, rows: list[dict]) -> tuple[str, dict[str, list[str]]]:
    """Where the newest failure checks come from, and the failed checks per direction."""
    if rows:
        last = max(int(r["step"]) for r in rows)
        return (f"evaluation at step {last}",
                {r["direction"]: [n for n in r["failed"].split(";") if n] for r in rows if int(r["step"]) == last})
    try:
        metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    except (OSError, ValueError):
        return "", {}
    found = {}
    for direction, scores in metrics.items() if isinstance(metrics, dict) else ():
        checks = scores.get("detectors") if isinstance(scores, dict) else None
        if isinstance(checks, dict):
            found[direction] = [n for n, f in checks.items() if isinstance(f, dict) and not f.get("ok", True)]
    return ("cyclegan evaluate (eval/metrics.json)" if found else ""), found


def done_section(run_dir: Path) -> str:
    """HTML of the "Is it done?" summary: KID trend, best step, failure checks."""
    from .report import _esc, _table

    run_dir = Path(run_dir)
    rows = read_rows(run_dir / EVAL_LOG)
    steps, kids, stds = mean_kid_by_step(rows)
    items: list[tuple[str, object]] = []
    if len(steps):
        trend = kid_trend(kids, stds)
        n = min(TREND_WINDOW, len(kids))
        items.append(("KID trend", TREND_TEXT[trend].format(n=n - 1)))
        items.append(("newest mean KID", f"{kids[-1]:.4f} +- {stds[-1]:.4f} at step {int(steps[-1])} "
                                         f"({len(steps)} readings)"))
    else:
        items.append(("KID trend", "no evaluations during training: train with --eval-freq N (e.g. 5000) to see "
                                   "whether the run still improves"))
    best = read_best(run_dir)
    if best:
        items.append(("best checkpoint", f"step {best.get('step')}, mean KID {float(best.get('mean_kid', 'nan')):.4f}, "
                                         "in checkpoints/best; chosen on the evaluation images, so its scores there "
                                         "flatter it. evaluate and translate use the final checkpoint."))
    source, checks = _latest_checks(run_dir, rows)
    if checks:
        for direction, bad in checks.items():
            verdict = ("all passed" if not bad else "FAILED: " + ", ".join(TITLES.get(b, b) for b in bad))
            items.append((f"failure checks {direction}", f"{verdict} ({source})"))
    else:
        items.append(("failure checks", "none run yet (--eval-freq, or cyclegan evaluate RUN)"))
    advice = sorted({b for bad in checks.values() for b in bad})
    html = _table(items)
    if advice:
        from .detectors import ADVICE

        html += "<ul>" + "".join(f"<li><b>{_esc(TITLES.get(b, b))}</b>: {_esc(ADVICE[b])}</li>" for b in advice
                                 if b in ADVICE) + "</ul>"
    return html


def scores_section(run_dir: Path) -> str:
    """HTML of the score curves: KID (mean +- std), FID and cycle error per direction against the step."""
    from .report import _esc, _figure, _png_data_uri

    run_dir = Path(run_dir)
    rows = read_rows(run_dir / EVAL_LOG)
    if not rows:
        return '<p class="muted">no evaluations during training (train with --eval-freq N)</p>'
    fig, axes = _figure(12, 3.6, ncols=3)
    best = read_best(run_dir)
    for i, direction in enumerate(("AtoB", "BtoA")):
        mine = sorted((r for r in rows if r["direction"] == direction), key=lambda r: int(r["step"]))
        if not mine:
            continue
        x = np.array([int(r["step"]) for r in mine])
        col = {k: np.array([float(r[k]) for r in mine]) for k in ("kid_mean", "kid_std", "fid", "cycle_l1")}
        style = dict(color=f"C{i}", marker="o", markersize=3, linewidth=1.5, label=direction)
        axes[0].errorbar(x, col["kid_mean"], yerr=col["kid_std"], capsize=2, **style)
        axes[1].plot(x, col["fid"], **style)
        axes[2].plot(x, col["cycle_l1"], **style)
    for ax, title in zip(axes, ("KID (mean +- std over subsets)", "FID (rank-deficient below 2048 images)",
                                "cycle error |F(G(x)) - x|")):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if best and isinstance(best.get("step"), int):
            ax.axvline(best["step"], color="0.5", linestyle="--", linewidth=1)
        ax.legend(fontsize="small")
    n_fake = rows[-1]["n_fake"]
    note = (f"{len(rows) // 2} readings of {n_fake} translations per direction against the real held-out images "
            f"(RUN_DIR/{EVAL_LOG})" + (f"; dashed line: the best checkpoint, step {best['step']}" if best else ""))
    return (f'<img class="plot" src="{_png_data_uri(fig)}" alt="evaluation scores during training">'
            f'<p class="muted">{_esc(note)}</p>')
