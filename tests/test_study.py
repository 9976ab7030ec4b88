"""The real-vs-fake perceptual study: protocol functions, database, web server (Flask test client), CLI."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from cyclegan.config import ConfigError
from cyclegan.data.images import DatasetError
from cyclegan.cli import build_parser
from cyclegan.study import db as studydb
from cyclegan.study.protocol import (
    MIN_IMAGES, N_PRACTICE, N_SCORED, N_TRIALS, assign_algorithm, fake_chosen, mean_and_stderr, plan_trials, summarize,
)

from conftest import make_images

flask = pytest.importorskip("flask", reason="cyclegan study needs Flask: pip install 'flask>=2.3'")
from cyclegan.study.app import COOKIE, create_app  # noqa: E402


# ---------------------------------------------------------------- protocol (pure functions)

def test_plan_is_seeded_balanced_and_cycles_through_images():
    plan = plan_trials(7, 5, seed=3)
    assert plan == plan_trials(7, 5, seed=3) and plan != plan_trials(7, 5, seed=4)
    assert len(plan) == N_TRIALS and [t.position for t in plan] == list(range(N_TRIALS))
    assert [t.practice for t in plan] == [True] * N_PRACTICE + [False] * N_SCORED
    practice, scored = plan[:N_PRACTICE], plan[N_PRACTICE:]
    assert sum(t.fake_side == "left" for t in practice) == N_PRACTICE // 2
    assert sum(t.fake_side == "left" for t in scored) == N_SCORED // 2
    reals = [t.real_index for t in plan]
    assert sorted(reals[:7]) == list(range(7))  # every image once before any repeats
    assert sorted(t.fake_index for t in plan[:5]) == list(range(5))
    assert all(a != b for a, b in zip(reals, reals[1:]))  # no image twice in a row
    with pytest.raises(ValueError):
        plan_trials(MIN_IMAGES - 1, 10, seed=0)


def test_fake_chosen_and_round_robin_assignment():
    assert fake_chosen("left", "left") and not fake_chosen("left", "right")
    with pytest.raises(ValueError):
        fake_chosen("left", "up")
    algos = ["a", "b", "c"]
    counts: dict[str, int] = {}
    order = []
    for _ in range(7):
        name = assign_algorithm(algos, counts)
        counts[name] = counts.get(name, 0) + 1
        order.append(name)
    assert order == ["a", "b", "c", "a", "b", "c", "a"]


def test_stats_mean_and_standard_error_over_participants():
    mean, se = mean_and_stderr([20.0, 30.0, 40.0])
    assert mean == pytest.approx(30.0) and se == pytest.approx(10.0 / 3 ** 0.5)
    assert mean_and_stderr([]) == (None, None) and mean_and_stderr([25.0]) == (25.0, None)
    answers = [("a", 1, True)] * 10 + [("a", 1, False)] * 30 + [("a", 2, True)] * 20 + [("a", 2, False)] * 20
    answers += [("a", 3, True)] * 5  # unfinished participant: ignored
    (res, res_b) = summarize(["a", "b"], answers, finished=[1, 2])
    assert res.participants == 2 and res.scored_trials == 80
    assert res.fooled_pct == pytest.approx(37.5) and res.stderr_pct == pytest.approx(12.5)
    assert res.describe() == "37.5% +- 12.5%"
    assert res_b.participants == 0 and res_b.fooled_pct is None and res_b.describe() == "n/a"


# ---------------------------------------------------------------- server

@pytest.fixture()
def folders(tmp_path: Path):
    real = tmp_path / "real"
    make_images(real, 6, seed=1)
    fake_a = tmp_path / "cyclegan"
    fake_b = tmp_path / "baseline"
    make_images(fake_a, 5, seed=2, suffix=".jpg")
    make_images(fake_b, 5, seed=3)
    (real / "notes.txt").write_text("not an image, ignored")
    return real, fake_a, fake_b


@pytest.fixture()
def app(folders, tmp_path):
    real, fake_a, _ = folders
    return create_app(real, [fake_a], tmp_path / "study.sqlite3", seed=0)


def _trial_form(html: str) -> dict:
    trial = re.search(r'name="trial" value="(\d+)"', html)
    assert trial, html
    images = re.findall(r'src="/image/([A-Za-z0-9_-]+)"', html)
    return {"trial": trial.group(1), "images": images}


def _start(client):
    resp = client.post("/start")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/trial")
    return client.get("/trial")


def _db_rows(app, sql, args=()):
    conn = sqlite3.connect(app.config["STUDY_DB"])
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_full_session_with_practice_feedback_then_scored(app):
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200 and b'id="start"' in page.data
    page = _start(client)
    feedback_after = []
    for i in range(N_TRIALS):
        html = page.get_data(as_text=True)
        form = _trial_form(html)
        assert len(form["images"]) == 2
        if i == 0:
            for token in form["images"]:
                img = client.get(f"/image/{token}")
                assert img.status_code == 200 and img.mimetype == "image/png"
                assert img.data.startswith(b"\x89PNG")  # real and fake both re-encoded as PNG
        assert ('id="practice-over"' in html) == (i == N_PRACTICE)
        choice = "left" if i % 3 else "right"
        resp = client.post("/answer", data={"trial": form["trial"], "choice": choice})
        assert resp.status_code == 303, resp.data
        page = client.get("/trial")
        assert page.status_code == 200
        feedback_after.append('id="feedback"' in page.get_data(as_text=True))
    assert feedback_after == [True] * N_PRACTICE + [False] * N_SCORED
    assert b'id="finished"' in page.data
    rows = _db_rows(app, "SELECT t.practice, t.fake_side, r.choice, r.fake_chosen, r.response_ms FROM responses r "
                         "JOIN trials t ON t.id = r.trial_id ORDER BY t.position")
    assert len(rows) == N_TRIALS and sum(1 - r[0] for r in rows) == N_SCORED
    assert all(r[3] == (r[1] == r[2]) and r[4] >= 0 for r in rows)
    assert _db_rows(app, "SELECT COUNT(*) FROM participants WHERE finished_at IS NOT NULL") == [(1,)]
    # one session per participant: the finished one cannot start again nor answer more
    again = client.post("/start")
    assert again.status_code == 409
    assert b'id="already-done"' in client.get("/").data
    late = client.post("/answer", data={"trial": form["trial"], "choice": "left"})
    assert late.status_code == 409


def test_feedback_names_the_real_side(app):
    client = app.test_client()
    form = _trial_form(_start(client).get_data(as_text=True))
    ((fake_side,),) = _db_rows(app, "SELECT fake_side FROM trials WHERE id = ?", (int(form["trial"]),))
    real_side = "right" if fake_side == "left" else "left"
    client.post("/answer", data={"trial": form["trial"], "choice": real_side})
    html = client.get("/trial").get_data(as_text=True)
    assert "Correct: the %s image" % real_side in html


def test_images_only_by_opaque_id_of_own_shown_trial(app):
    client = app.test_client()
    form = _trial_form(_start(client).get_data(as_text=True))
    for bad in ("/image/../../etc/passwd", "/image/..%2F..%2Fetc%2Fpasswd", "/image/%2Fetc%2Fpasswd",
                "/image/nonexistent-token", "/image/", "/image/1", "/etc/passwd", "/image/real/img_000.png"):
        assert client.get(bad).status_code == 404, bad
    # a future trial's images are not served before it is shown
    ((left, right),) = _db_rows(app, "SELECT left_token, right_token FROM trials WHERE position = 1")
    assert client.get(f"/image/{left}").status_code == 404
    # another participant (or no session) cannot fetch this participant's images
    other = app.test_client()
    assert other.get(f"/image/{form['images'][0]}").status_code == 404
    _start(other)
    assert other.get(f"/image/{form['images'][0]}").status_code == 404
    assert client.get(f"/image/{form['images'][0]}").status_code == 200


def test_answers_are_validated(app):
    client = app.test_client()
    # no session
    assert client.post("/answer", data={"trial": "1", "choice": "left"}).status_code == 403
    form = _trial_form(_start(client).get_data(as_text=True))
    tid = int(form["trial"])
    assert client.post("/answer", data={"trial": tid, "choice": "up"}).status_code == 400
    assert client.post("/answer", data={"trial": tid}).status_code == 400
    assert client.post("/answer", data={"trial": "x", "choice": "left"}).status_code == 400
    assert client.post("/answer", data={"trial": "999999", "choice": "left"}).status_code == 404
    # a trial of this session not shown yet
    assert client.post("/answer", data={"trial": tid + 1, "choice": "left"}).status_code == 400
    # another participant's trial
    other = app.test_client()
    other_tid = int(_trial_form(_start(other).get_data(as_text=True))["trial"])
    assert client.post("/answer", data={"trial": other_tid, "choice": "left"}).status_code == 404
    # a forged session cookie
    forged = app.test_client()
    forged.set_cookie(COOKIE, "forged-token")
    assert forged.post("/answer", data={"trial": tid, "choice": "left"}).status_code == 403
    assert client.get("/answer").status_code == 405
    # answered once, then again (double submission)
    assert client.post("/answer", data={"trial": tid, "choice": "left"}).status_code == 303
    assert client.post("/answer", data={"trial": tid, "choice": "right"}).status_code == 409
    # the next trial is not answerable until its page was displayed
    assert client.post("/answer", data={"trial": tid + 1, "choice": "left"}).status_code == 400
    client.get("/trial")
    assert client.post("/answer", data={"trial": tid + 1, "choice": "left"}).status_code == 303
    assert _db_rows(app, "SELECT COUNT(*) FROM responses") == [(2,)]
    # restarting in the middle of a session continues it rather than making a new one
    assert client.post("/start").status_code == 303
    assert _db_rows(app, "SELECT COUNT(*) FROM participants") == [(2,)]


def test_several_algorithms_assigned_round_robin(folders, tmp_path):
    real, fake_a, fake_b = folders
    app = create_app(real, [fake_a, fake_b], tmp_path / "multi.sqlite3", seed=1)
    for _ in range(5):
        _start(app.test_client())
    rows = _db_rows(app, "SELECT algorithm FROM participants ORDER BY id")
    assert [r[0] for r in rows] == ["cyclegan", "baseline", "cyclegan", "baseline", "cyclegan"]
    fake_of = _db_rows(app, "SELECT p.algorithm, t.fake_image FROM trials t JOIN participants p ON p.id = t.participant_id")
    assert all(Path(f).parent.name == a for a, f in fake_of)
    # restart on the same database continues it; other folders are refused
    again = create_app(real, [fake_a, fake_b], tmp_path / "multi.sqlite3", seed=1)
    _start(again.test_client())
    assert _db_rows(app, "SELECT algorithm FROM participants ORDER BY id DESC LIMIT 1") == [("baseline",)]
    with pytest.raises(ConfigError, match="other folders"):
        create_app(real, [fake_a], tmp_path / "multi.sqlite3")


def test_time_limit_is_rendered_and_enforced_for_images(folders, tmp_path, monkeypatch):
    import cyclegan.study.app as study_app

    real, fake_a, _ = folders
    app = create_app(real, [fake_a], tmp_path / "t.sqlite3", time_limit=1.5)
    client = app.test_client()
    html = _start(client).get_data(as_text=True)
    assert 'data-time-limit="1.5"' in html
    token = _trial_form(html)["images"][0]
    assert client.get(f"/image/{token}").status_code == 200
    now = study_app.time.time()
    monkeypatch.setattr(study_app.time, "time", lambda: now + 1.5 + study_app.IMAGE_GRACE_S + 1)
    assert client.get(f"/image/{token}").status_code == 410
    # the answer is still taken after the images are hidden
    assert client.post("/answer", data={"trial": _trial_form(html)["trial"], "choice": "left"}).status_code == 303


def test_bad_folders_fail_at_start(folders, tmp_path):
    real, fake_a, _ = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    few = tmp_path / "few"
    make_images(few, MIN_IMAGES - 1)
    broken = tmp_path / "broken"
    make_images(broken, MIN_IMAGES)
    (broken / "zz.png").write_bytes(b"not a png")
    db = tmp_path / "x.sqlite3"
    with pytest.raises(DatasetError, match="holds no images"):
        create_app(real, [empty], db)
    with pytest.raises(DatasetError, match=f"holds {MIN_IMAGES - 1} image"):
        create_app(real, [few], db)
    with pytest.raises(DatasetError, match="real folder .* does not exist"):
        create_app(tmp_path / "missing", [fake_a], db)
    with pytest.raises(DatasetError, match="zz.png"):
        create_app(real, [broken], db)
    with pytest.raises(ConfigError):
        create_app(real, [real], db)
    with pytest.raises(ConfigError):
        create_app(real, [], db)
    with pytest.raises(ConfigError):
        create_app(real, [fake_a], db, time_limit=0)
    assert not db.exists()  # nothing written for a study that cannot run


# ---------------------------------------------------------------- results and CLI

def _hand_made_db(path: Path) -> None:
    """Two algorithms; 'cyclegan' has 3 finished participants fooled 10/40, 12/40, 8/40 and one unfinished."""
    studydb.init_db(path, "/real", [("cyclegan", "/f1"), ("pix2pix", "/f2")], N_PRACTICE, N_SCORED)
    conn = studydb.connect(path)
    fooled = {1: 10, 2: 12, 3: 8, 4: 3}
    for pid, n_fooled in fooled.items():
        conn.execute("INSERT INTO participants (id, token, algorithm, seed, created_at, finished_at) "
                     "VALUES (?, ?, 'cyclegan', 0, 0, ?)", (pid, f"t{pid}", None if pid == 4 else 1.0))
        n = N_TRIALS if pid != 4 else N_PRACTICE + 5
        for pos in range(n):
            practice = pos < N_PRACTICE
            chosen = int(practice or pos - N_PRACTICE < n_fooled)  # practice answers must not count
            tid = conn.execute("INSERT INTO trials (participant_id, position, practice, real_image, fake_image, "
                               "fake_side, left_token, right_token, shown_at) VALUES (?, ?, ?, 'r', 'f', 'left', ?, ?, 0)",
                               (pid, pos, int(practice), f"l{pid}-{pos}", f"r{pid}-{pos}")).lastrowid
            conn.execute("INSERT INTO responses VALUES (?, ?, ?, 1, 100)", (tid, "left" if chosen else "right", chosen))
    conn.close()


def _parse(argv):
    return build_parser().parse_args(argv)


def test_results_of_hand_made_db(tmp_path, capsys):
    db = tmp_path / "hand.sqlite3"
    _hand_made_db(db)
    results, unfinished = studydb.read_results(db)
    cg, p2p = results
    assert (cg.algorithm, cg.participants, cg.scored_trials) == ("cyclegan", 3, 120)
    assert cg.fooled_pct == pytest.approx(25.0)  # (25 + 30 + 20) / 3
    assert cg.stderr_pct == pytest.approx(5.0 / 3 ** 0.5)  # std 5 over 3 participants
    assert unfinished == {"cyclegan": 1, "pix2pix": 0} and p2p.participants == 0
    out_json = tmp_path / "res.json"
    args = _parse(["study-results", str(db), "--json", str(out_json)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "25.0% +- 2.9%" in out and "pix2pix" in out
    data = json.loads(out_json.read_text())
    assert data["results"][0]["fooled_pct"] == pytest.approx(25.0) and data["results"][0]["participants"] == 3
    assert data["results"][1]["fooled_pct"] is None


def test_results_bad_db_is_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        studydb.read_results(tmp_path / "nope.sqlite3")
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database " * 100)
    with pytest.raises(ConfigError, match="cannot read study database"):
        studydb.read_results(junk)


def test_study_parser_defaults_and_bad_input(folders, tmp_path):
    real, fake_a, fake_b = folders
    args = _parse(["study", "--real", str(real), "--fake", str(fake_a), "--fake", str(fake_b)])
    assert args.fake == [fake_a, fake_b] and args.port == 8000 and args.time_limit is None
    assert args.db == Path("study.sqlite3")
    args = _parse(["study", "--real", str(real), "--fake", str(tmp_path / "empty-missing"),
                   "--db", str(tmp_path / "s.sqlite3"), "--port", "0"])
    with pytest.raises(DatasetError):
        args.func(args)


def test_port_in_use_is_one_line_error():
    import socket

    from cyclegan.study.commands import _check_port_free

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="pick another --port"):
            _check_port_free("127.0.0.1", port)
