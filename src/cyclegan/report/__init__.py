"""RUN_DIR/report.html: one self-contained page summarising a run.

`read` reads the run (loss log, sample grids) and draws the plots, `page` renders and writes
the HTML page, `refresher` rewrites it in a background thread while training runs.
"""

from .page import render_report, write_report
from .read import auto_window, loss_terms, plot_terms, read_loss_log, sample_grids, sliding_mean, thumbnail_jpeg
from .refresher import ReportRefresher

__all__ = [
    "ReportRefresher", "auto_window", "loss_terms", "plot_terms", "read_loss_log", "render_report", "sample_grids",
    "sliding_mean", "thumbnail_jpeg", "write_report",
]
