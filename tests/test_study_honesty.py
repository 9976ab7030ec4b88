"""The study keeps its data honest: image fingerprints checked at restart, every image fully
decoded at start-up, request bodies limited on every route. Real files (real horse2zebra
JPEGs from ../shared/data), the Flask test client, and a real server on 127.0.0.1."""

from __future__ import annotations

import http.client
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.data.images import DatasetError, check_image_header
from cyclegan.study import db as studydb

flask = pytest.importorskip("flask", reason="cyclegan study needs Flask: pip install 'flask>=2.3'")
from cyclegan.study.app import create_app  # noqa: E402

H2Z = SHARED_DATA / "horse2zebra"


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for src in sorted((H2Z / "testB").iterdir())[:6]:
        shutil.copy(src, real / src.name)
    for src in sorted((H2Z / "testA").iterdir())[:6]:
        shutil.copy(src, fake / src.name)
    return real, fake


def _participants(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
    finally:
        conn.close()


def test_restart_with_same_images_continues(folders, tmp_path):
    real, fake = folders
    db = tmp_path / "s.sqlite3"
    client = create_app(real, [fake], db, seed=0).test_client()
    assert client.post("/start").status_code == 303
    create_app(real, [fake], db, seed=0)  # same images: the study goes on
    assert _participants(db) == 1


def test_restart_after_images_changed_is_one_line_naming_them(folders, tmp_path):
    real, fake = folders
    db = tmp_path / "s.sqlite3"
    create_app(real, [fake], db, seed=0).test_client().post("/start")
    files = sorted(fake.iterdir())
    shutil.copy(sorted((H2Z / "trainA").iterdir())[0], files[1])  # same name, other picture
    files[2].unlink()
    shutil.copy(sorted((H2Z / "trainA").iterdir())[1], fake / "new_one.jpg")
    with pytest.raises(ConfigError) as err:
        create_app(real, [fake], db, seed=0)
    message = str(err.value)
    assert "\n" not in message
    assert f"fake (fake) images: changed {files[1].name} (1); added new_one.jpg (1); removed {files[2].name} (1)" \
        in message
    assert "--new-study" in message
    assert _participants(db) == 1  # the old answers are untouched


def test_new_study_keeps_the_old_database(folders, tmp_path, capsys):
    real, fake = folders
    db = tmp_path / "s.sqlite3"
    create_app(real, [fake], db, seed=0).test_client().post("/start")
    shutil.copy(sorted((H2Z / "trainA").iterdir())[0], sorted(fake.iterdir())[0])
    create_app(real, [fake], db, seed=0, new_study=True)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("s.sqlite3.") and p.name.endswith(".old")]
    assert len(kept) == 1 and "previous database is kept as" in capsys.readouterr().out
    assert _participants(kept[0]) == 1 and _participants(db) == 0
    create_app(real, [fake], db, seed=0)  # the new study now holds the new fingerprints


def test_database_without_fingerprints_takes_them_on(folders, tmp_path):
    real, fake = folders
    db = tmp_path / "old.sqlite3"
    names = [("fake", str(fake.resolve()))]
    studydb.init_db(db, str(real.resolve()), names, 10, 40)  # as an earlier version wrote it
    create_app(real, [fake], db, seed=0)
    (sorted(fake.iterdir())[0]).write_bytes((sorted((H2Z / "trainA").iterdir())[0]).read_bytes())
    with pytest.raises(ConfigError, match="changed"):
        create_app(real, [fake], db, seed=0)


def test_truncated_image_is_refused_at_start_naming_it(folders, tmp_path):
    real, fake = folders
    victim = sorted(fake.iterdir())[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # header intact, pixels cut off
    assert check_image_header(victim) is None  # what the old start-up check looked at
    with pytest.raises(DatasetError) as err:
        create_app(real, [fake], tmp_path / "s.sqlite3")
    assert str(victim) in str(err.value) and "truncated" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "s.sqlite3").exists()


@pytest.mark.parametrize("method, route", [("post", "/start"), ("post", "/answer"), ("get", "/"),
                                           ("get", "/trial"), ("post", "/nowhere")])
def test_large_bodies_get_413_everywhere(folders, tmp_path, method, route):
    real, fake = folders
    app = create_app(real, [fake], tmp_path / "s.sqlite3", seed=0)
    client = app.test_client()
    resp = getattr(client, method)(route, data=b"x" * (20 * 1024 * 1024))
    assert resp.status_code == 413
    assert _participants(tmp_path / "s.sqlite3") == 0
    assert client.post("/start", data={"a": "b"}).status_code == 303  # small bodies still work


@pytest.fixture()
def server(folders, tmp_path):
    from werkzeug.serving import make_server

    real, fake = folders
    srv = make_server("127.0.0.1", 0, create_app(real, [fake], tmp_path / "s.sqlite3", seed=0), threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _post(port: int, body, **kwargs) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/start", body=body, headers={"Content-Type": "application/octet-stream"}, **kwargs)
        return conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return -1  # closed before the whole body was sent: checked below through the database
    finally:
        conn.close()


def test_real_server_refuses_20mb_start(server, tmp_path):
    status = _post(server.server_port, b"x" * (20 * 1024 * 1024))
    assert status in (413, -1)
    assert _participants(tmp_path / "s.sqlite3") == 0
    assert _post(server.server_port, b"") == 303  # the server is still there for normal requests


def test_real_server_limits_a_chunked_body_without_length(server, tmp_path):
    chunks = (b"x" * 65536 for _ in range(320))  # 20 MB, Transfer-Encoding: chunked
    status = _post(server.server_port, chunks, encode_chunked=True)
    assert status in (413, -1)
    assert _participants(tmp_path / "s.sqlite3") == 0
    assert _post(server.server_port, iter([b"a=b"]), encode_chunked=True) == 303  # small chunked bodies pass


def test_cli_new_study_flag(folders, tmp_path, monkeypatch):
    """`cyclegan study` refuses changed images in one line; --new-study is the documented way out."""
    real, fake = folders
    db = tmp_path / "s.sqlite3"
    create_app(real, [fake], db, seed=0).test_client().post("/start")
    shutil.copy(sorted((H2Z / "trainA").iterdir())[0], sorted(fake.iterdir())[0])
    assert main(["study", "--real", str(real), "--fake", str(fake), "--db", str(db), "--port", "0"]) == 2

    served = []
    monkeypatch.setattr("werkzeug.serving.BaseWSGIServer.serve_forever", lambda self: served.append(self))
    assert main(["study", "--real", str(real), "--fake", str(fake), "--db", str(db), "--port", "0",
                 "--new-study"]) == 0
    assert served and _participants(db) == 0
