"""SQLite storage of the perceptual study (stdlib sqlite3): participants, trials, responses.

Tables
  meta(key, value)             the real folder the database was made for, protocol sizes
  algorithms(name, folder, position)
  participants(id, token, algorithm, seed, time_limit, created_at, finished_at)
      `token` is the opaque session id held in the participant's cookie; `id` is what results show.
  trials(id, participant_id, position, practice, real_image, fake_image, fake_side,
         left_token, right_token, shown_at)
      one row per planned trial, written when the session starts; `left_token`/`right_token` are
      the opaque ids under which the two images of the trial are served; `shown_at` is set when
      the trial is first displayed.
  responses(trial_id, choice, fake_chosen, answered_at, response_ms)
      at most one per trial (primary key), so a double submission cannot be stored.
Times are Unix seconds.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ..config import ConfigError
from .protocol import AlgorithmResult, summarize

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS algorithms (
    name TEXT PRIMARY KEY, folder TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    algorithm TEXT NOT NULL REFERENCES algorithms(name),
    seed INTEGER NOT NULL,
    time_limit REAL,
    created_at REAL NOT NULL,
    finished_at REAL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    position INTEGER NOT NULL,
    practice INTEGER NOT NULL CHECK (practice IN (0, 1)),
    real_image TEXT NOT NULL,
    fake_image TEXT NOT NULL,
    fake_side TEXT NOT NULL CHECK (fake_side IN ('left', 'right')),
    left_token TEXT NOT NULL UNIQUE,
    right_token TEXT NOT NULL UNIQUE,
    shown_at REAL,
    UNIQUE (participant_id, position));
CREATE TABLE IF NOT EXISTS responses (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
    fake_chosen INTEGER NOT NULL CHECK (fake_chosen IN (0, 1)),
    answered_at REAL NOT NULL,
    response_ms REAL);
"""


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are opened explicitly with `transaction`)."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so check-then-write is atomic."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def set_aside(path: str | Path) -> Path | None:
    """Rename an existing database to PATH.YYYYmmdd-HHMMSS.old (never deleted); the new name, or None."""
    path = Path(path)
    if not path.exists():
        return None
    kept = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.old")
    n = 1
    while kept.exists():
        kept, n = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}-{n}.old"), n + 1
    os.replace(path, kept)
    for suffix in ("-journal", "-wal", "-shm"):  # SQLite's side files go with it
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    return kept


def _changes(stored: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> str:
    """What differs between two fingerprints, as a short phrase naming folders and files."""
    parts = []
    for role in sorted(set(stored) | set(now)):
        old, new = stored.get(role, {}), now.get(role, {})
        changed = sorted(n for n in set(old) & set(new) if old[n] != new[n])
        added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        bits = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} ({len(names)})"
                for label, names in (("changed", changed), ("added", added), ("removed", removed)) if names]
        if bits:
            parts.append(f"{role} images: " + "; ".join(bits))
    return "; ".join(parts)


def init_db(path: str | Path, real_folder: str, algorithms: Sequence[tuple[str, str]],
            n_practice: int, n_scored: int, fingerprints: dict[str, dict[str, str]] | None = None) -> None:
    """Create the database, or check that an existing one was made for the same folders and images.

    Restarting the server on the same database continues the study; pointing it at other
    folders, or at the same folders with other images (`fingerprints`: per folder, file name ->
    SHA-256), would mix two studies under one algorithm, so that is refused in one line.
    """
    try:
        conn = connect(path)
        with transaction(conn):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            wanted = {"real_folder": real_folder, "n_practice": str(n_practice), "n_scored": str(n_scored),
                      "algorithms": json.dumps([list(a) for a in algorithms])}
            stored = {row["key"]: row["value"] for row in conn.execute("SELECT key, value FROM meta")}
            stored_prints = stored.pop("fingerprints", None)
            if stored and stored != wanted:
                raise ConfigError(
                    f"study database {path} was made for other folders or protocol "
                    f"(real {stored.get('real_folder')}, algorithms {stored.get('algorithms')}); "
                    "pass the same folders or a new --db")
            if fingerprints is not None and stored_prints is not None:
                changes = _changes(json.loads(stored_prints), fingerprints)
                if changes:
                    raise ConfigError(
                        f"study database {path} was made for other images: {changes}; restore them, or start "
                        "a new study with --new-study (the old database is kept) or a new --db")
            if not stored:
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", wanted.items())
                conn.executemany("INSERT INTO algorithms (name, folder, position) VALUES (?, ?, ?)",
                                 [(name, folder, i) for i, (name, folder) in enumerate(algorithms)])
            if fingerprints is not None and stored_prints is None:
                # a new database, or one from a version without fingerprints: its images from now on
                conn.execute("INSERT INTO meta (key, value) VALUES ('fingerprints', ?)",
                             (json.dumps(fingerprints, sort_keys=True),))
        conn.close()
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"cannot use study database {path}: {err}") from None


def read_results(path: str | Path) -> tuple[list[AlgorithmResult], dict[str, int]]:
    """Per-algorithm results of a study database, and per algorithm the number of unfinished sessions."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study database {path} does not exist; pass the --db file written by `cyclegan study`")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            algorithms = [r[0] for r in conn.execute("SELECT name FROM algorithms ORDER BY position")]
            answers = conn.execute(
                "SELECT p.algorithm, p.id, r.fake_chosen FROM responses r "
                "JOIN trials t ON t.id = r.trial_id JOIN participants p ON p.id = t.participant_id "
                "WHERE t.practice = 0").fetchall()
            finished = [r[0] for r in conn.execute("SELECT id FROM participants WHERE finished_at IS NOT NULL")]
            unfinished = dict(conn.execute(
                "SELECT algorithm, COUNT(*) FROM participants WHERE finished_at IS NULL GROUP BY algorithm"))
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"cannot read study database {path}: {err}") from None
    results = summarize(algorithms, [(a, p, bool(c)) for a, p, c in answers], finished)
    return results, {name: unfinished.get(name, 0) for name in algorithms}
