"""Real-vs-fake perceptual study (the paper's AMT protocol, Table 1).

The commands need no Flask to be listed; the server (`cyclegan.study.app.create_app`) does.
"""

from __future__ import annotations

from .commands import StudyDependencyError, serve_study, study_results

__all__ = ["StudyDependencyError", "create_app", "serve_study", "study_results"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
