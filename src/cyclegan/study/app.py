"""The web server of the real-vs-fake study (Flask): `create_app(real_dir, fake_dirs, db_path)`.

Security model: the client never names a file. Every trial row holds two random tokens, and
/image/TOKEN serves the image of that slot only to the participant whose cookie owns the trial,
only once the trial has been shown, and (with a time limit) only until the limit has passed.
Every POST is checked against the database inside one write transaction.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from threading import Lock
from typing import Sequence

from flask import Flask, Response, abort, make_response, redirect, render_template, request, url_for
from jinja2 import DictLoader

from ..config import ConfigError
from ..data.images import DatasetError, ImageLoadError, check_image_header, list_images, load_image
from . import db as studydb
from . import pages
from .protocol import MIN_IMAGES, N_PRACTICE, N_SCORED, SIDES, assign_algorithm, fake_chosen, plan_trials

COOKIE = "cyclegan_study"
# Extra seconds an image may still be fetched after the display limit (page and image load time).
IMAGE_GRACE_S = 5.0
_IMAGE_CACHE_SIZE = 256
# The study's forms send a few short fields; anything larger is refused (413) on every route,
# before a handler runs, whether or not the handler reads the body.
MAX_BODY_BYTES = 16 * 1024


def study_images(folder: str | Path, role: str) -> list[Path]:
    """The images of one study folder, checked at start-up so that a bad file fails now, not mid-study.

    Files without an image extension are ignored (list_images); every other file is fully decoded
    here (a truncated image fails now, naming it, instead of being served as an error mid-study).
    """
    if not Path(folder).is_dir():
        raise DatasetError(f"{role} folder {folder} does not exist or is not a folder")
    try:
        files = list_images(folder)
    except DatasetError as err:
        raise DatasetError(f"{role} {err}") from None
    if len(files) < MIN_IMAGES:
        raise DatasetError(f"{role} folder {folder} holds {len(files)} image(s); the study needs at least "
                           f"{MIN_IMAGES} (images are reused across the {N_PRACTICE + N_SCORED} trials)")
    for path in files:
        problem = check_image_header(path)
        if problem is not None:
            raise DatasetError(f"{role} image {path} cannot be used: {problem}; remove or re-export it")
        try:
            load_image(path, channels=3)  # every pixel decoded, as /image will
        except ImageLoadError as err:
            reason = str(err).split(f"{path}: ", 1)[-1].split(" (")[0]
            raise DatasetError(f"{role} image {path} cannot be used: {reason}; remove or re-export it") from None
    return [p.resolve() for p in files]


def fingerprint(files: Sequence[Path]) -> dict[str, str]:
    """{file name: SHA-256 of its bytes}: what a study's answers were given on."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def algorithm_names(fake_dirs: Sequence[str | Path]) -> list[str]:
    """Folder names (`.../cyclegan/fake` -> 'fake'); full paths where two folders share a name."""
    names = [Path(d).resolve().name or str(Path(d).resolve()) for d in fake_dirs]
    if len(set(names)) < len(names):
        names = [str(Path(d).resolve()) for d in fake_dirs]
    return names


class _PngCache:
    """Images re-encoded as PNG without metadata, so file format, JPEG artefacts of the container or
    EXIF cannot tell real from fake; a small LRU keeps repeated images cheap."""

    def __init__(self, size: int = _IMAGE_CACHE_SIZE):
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, path: str) -> bytes:
        with self._lock:
            if path in self._items:
                self._items.move_to_end(path)
                return self._items[path]
        buf = io.BytesIO()
        load_image(path, channels=3).save(buf, format="PNG")
        data = buf.getvalue()
        with self._lock:
            self._items[path] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return data


def create_app(real_dir: str | Path, fake_dirs: Sequence[str | Path], db_path: str | Path,
               time_limit: float | None = None, seed: int | None = None, new_study: bool = False) -> Flask:
    """The study server. `seed` makes trial plans reproducible (participant k gets seed + k).

    The database stores a fingerprint of every image; restarting on it with changed images
    is refused, unless `new_study`, which keeps the old database under another name first.
    """
    if isinstance(fake_dirs, (str, Path)):
        fake_dirs = [fake_dirs]
    if not fake_dirs:
        raise ConfigError("pass at least one --fake folder")
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"--time-limit must be a positive number of seconds, got {time_limit}")
    real_folder = Path(real_dir).resolve()
    if any(Path(d).resolve() == real_folder for d in fake_dirs):
        raise ConfigError(f"the real folder {real_dir} is also given as a --fake folder")
    if len({Path(d).resolve() for d in fake_dirs}) < len(fake_dirs):
        raise ConfigError("the same --fake folder is given twice")
    reals = study_images(real_dir, "real")
    names = algorithm_names(fake_dirs)
    fakes = {name: study_images(folder, f"fake ({name})") for name, folder in zip(names, fake_dirs)}
    allowed = {str(p) for p in reals} | {str(p) for files in fakes.values() for p in files}
    prints = {"real": fingerprint(reals), **{f"fake ({n})": fingerprint(files) for n, files in fakes.items()}}
    if new_study:
        kept = studydb.set_aside(db_path)
        if kept is not None:
            print(f"new study: the previous database is kept as {kept}", flush=True)
    studydb.init_db(db_path, str(real_folder), [(n, str(Path(d).resolve())) for n, d in zip(names, fake_dirs)],
                    N_PRACTICE, N_SCORED, fingerprints=prints)

    app = Flask(__name__)
    app.jinja_loader = DictLoader({"base.html": pages.BASE, "index.html": pages.INDEX, "trial.html": pages.TRIAL,
                                   "done.html": pages.DONE, "error.html": pages.ERROR})
    app.config.update(STUDY_DB=str(db_path), STUDY_TIME_LIMIT=time_limit, STUDY_SEED=seed,
                      STUDY_ALGORITHMS=names, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    pngs = _PngCache()

    @app.before_request
    def limit_body():
        # MAX_CONTENT_LENGTH alone only acts when a handler parses the body (/start never does).
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            abort(413, f"Request bodies are limited to {MAX_BODY_BYTES // 1024} KB.")
        environ = request.environ
        if request.content_length is None and environ.get("wsgi.input_terminated"):
            # A chunked body has no length to check, and werkzeug silently cuts it at MAX_CONTENT_LENGTH:
            # read one byte past the limit ourselves, then hand the handlers what was read.
            data = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
            if len(data) > MAX_BODY_BYTES:
                abort(413, f"Request bodies are limited to {MAX_BODY_BYTES // 1024} KB.")
            environ.update({"wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))})
            environ.pop("wsgi.input_terminated", None)

    def conn():
        return studydb.connect(db_path)

    def error(code: int, title: str, message: str) -> Response:
        return make_response(render_template("error.html", code=code, title=title, message=message), code)

    def current_participant(c):
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        return c.execute("SELECT * FROM participants WHERE token = ?", (token,)).fetchone()

    def next_trial(c, participant_id: int):
        return c.execute("SELECT t.* FROM trials t LEFT JOIN responses r ON r.trial_id = t.id "
                         "WHERE t.participant_id = ? AND r.trial_id IS NULL ORDER BY t.position LIMIT 1",
                         (participant_id,)).fetchone()

    def last_feedback(c, participant_id: int):
        row = c.execute("SELECT t.practice, t.fake_side, r.fake_chosen FROM responses r JOIN trials t "
                        "ON t.id = r.trial_id WHERE t.participant_id = ? ORDER BY t.position DESC LIMIT 1",
                        (participant_id,)).fetchone()
        if row is None or not row["practice"]:
            return None
        real_side = "right" if row["fake_side"] == "left" else "left"
        return {"correct": not row["fake_chosen"], "real_side": real_side}

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("Cache-Control", "no-store")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'unsafe-inline'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
        return resp

    for code, title in ((400, "Bad request"), (404, "Not found"), (405, "Method not allowed"),
                        (413, "Request too large")):
        app.register_error_handler(code, lambda err, code=code, title=title: error(
            code, title, getattr(err, "description", None) or title))

    @app.get("/")
    def index():
        c = conn()
        try:
            p = current_participant(c)
        finally:
            c.close()
        if p is not None and p["finished_at"] is None:
            return redirect(url_for("trial"), 303)
        return render_template("index.html", finished=p is not None, n_total=N_PRACTICE + N_SCORED,
                               n_practice=N_PRACTICE, n_scored=N_SCORED, time_limit=time_limit)

    @app.post("/start")
    def start():
        c = conn()
        try:
            with studydb.transaction(c):
                p = current_participant(c)
                if p is not None and p["finished_at"] is not None:
                    return error(409, "Already done", "You have already completed this study; "
                                 "each participant does one session.")
                if p is not None:
                    return redirect(url_for("trial"), 303)
                counts = dict(c.execute("SELECT algorithm, COUNT(*) FROM participants GROUP BY algorithm"))
                algorithm = assign_algorithm(names, counts)
                number = c.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
                plan_seed = seed + number if seed is not None else secrets.randbits(62)
                token = secrets.token_urlsafe(24)
                pid = c.execute(
                    "INSERT INTO participants (token, algorithm, seed, time_limit, created_at) VALUES (?, ?, ?, ?, ?)",
                    (token, algorithm, plan_seed, time_limit, time.time())).lastrowid
                fake_files = fakes[algorithm]
                plan = plan_trials(len(reals), len(fake_files), plan_seed)
                c.executemany(
                    "INSERT INTO trials (participant_id, position, practice, real_image, fake_image, fake_side, "
                    "left_token, right_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(pid, t.position, int(t.practice), str(reals[t.real_index]), str(fake_files[t.fake_index]),
                      t.fake_side, secrets.token_urlsafe(18), secrets.token_urlsafe(18)) for t in plan])
        finally:
            c.close()
        resp = redirect(url_for("trial"), 303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", max_age=30 * 24 * 3600)
        return resp

    @app.get("/trial")
    def trial():
        c = conn()
        try:
            p = current_participant(c)
            if p is None:
                return redirect(url_for("index"), 303)
            feedback = last_feedback(c, p["id"])
            t = next_trial(c, p["id"])
            if t is None:
                return render_template("done.html", participant=p["id"], feedback=feedback)
            if t["shown_at"] is None:
                c.execute("UPDATE trials SET shown_at = ? WHERE id = ? AND shown_at IS NULL", (time.time(), t["id"]))
            practice = bool(t["practice"])
            return render_template(
                "trial.html", feedback=feedback, practice=practice, trial_id=t["id"],
                number=t["position"] + 1 if practice else t["position"] + 1 - N_PRACTICE,
                out_of=N_PRACTICE if practice else N_SCORED, first_scored=t["position"] == N_PRACTICE,
                n_scored=N_SCORED, left=t["left_token"], right=t["right_token"], time_limit=p["time_limit"])
        finally:
            c.close()

    @app.post("/answer")
    def answer():
        choice = request.form.get("choice", "")
        trial_field = request.form.get("trial", "")
        c = conn()
        try:
            with studydb.transaction(c):
                p = current_participant(c)
                if p is None:
                    return error(403, "No session", "No study session: start one from the start page.")
                if p["finished_at"] is not None:
                    return error(409, "Session ended", "This session is finished; no more answers are taken.")
                if choice not in SIDES:
                    return error(400, "Bad request", "choice must be 'left' or 'right'.")
                if not trial_field.isdigit() or len(trial_field) > 18:
                    return error(400, "Bad request", "trial must be a trial number.")
                t = c.execute("SELECT * FROM trials WHERE id = ? AND participant_id = ?",
                              (int(trial_field), p["id"])).fetchone()
                if t is None:
                    return error(404, "Not found", "No such trial in this session.")
                if c.execute("SELECT 1 FROM responses WHERE trial_id = ?", (t["id"],)).fetchone():
                    return error(409, "Already answered", "This pair has already been answered.")
                current = next_trial(c, p["id"])
                if current is None or current["id"] != t["id"] or t["shown_at"] is None:
                    return error(400, "Not shown", "This pair has not been shown yet; answer the current one.")
                now = time.time()
                c.execute("INSERT INTO responses (trial_id, choice, fake_chosen, answered_at, response_ms) "
                          "VALUES (?, ?, ?, ?, ?)", (t["id"], choice, int(fake_chosen(t["fake_side"], choice)),
                                                     now, 1000.0 * (now - t["shown_at"])))
                if next_trial(c, p["id"]) is None:
                    c.execute("UPDATE participants SET finished_at = ? WHERE id = ?", (now, p["id"]))
        finally:
            c.close()
        return redirect(url_for("trial"), 303)

    @app.get("/image/<token>")
    def image(token: str):
        c = conn()
        try:
            p = current_participant(c)
            t = c.execute("SELECT * FROM trials WHERE left_token = ? OR right_token = ?", (token, token)).fetchone()
        finally:
            c.close()
        if p is None or t is None or t["participant_id"] != p["id"] or t["shown_at"] is None:
            return error(404, "Not found", "No such image.")
        if p["time_limit"] and time.time() > t["shown_at"] + p["time_limit"] + IMAGE_GRACE_S:
            return error(410, "Gone", "The display time of this pair is over.")
        side = "left" if token == t["left_token"] else "right"
        path = t["fake_image"] if side == t["fake_side"] else t["real_image"]
        if path not in allowed:  # defence in depth: only files listed at start-up are ever read
            return error(404, "Not found", "No such image.")
        try:
            data = pngs.get(path)
        except ImageLoadError:
            return error(500, "Server error", "The image could not be read.")
        resp = Response(data, mimetype="image/png")
        resp.headers["Cache-Control"] = "private, no-store"
        return resp

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/study.js")
    def script():
        return Response(pages.SCRIPT, mimetype="text/javascript")

    return app
