"""Real-vs-fake perceptual study (the paper's AMT protocol, Table 1).

`add_study_parsers` needs no Flask; the server (`cyclegan.study.app.create_app`) does.
"""

from __future__ import annotations

from .commands import StudyDependencyError, add_study_parsers

__all__ = ["StudyDependencyError", "add_study_parsers", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
