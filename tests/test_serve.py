"""`cyclegan serve`: the HTTP API through Flask's test client, and the page in headless Chromium with a real
image (the golden zoo model and horse photo, read in place from ../shared/golden)."""

from __future__ import annotations

import importlib.util
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
MODEL = GOLDEN / "zoo" / "latest_net_G.pth"
HORSE = GOLDEN / "zoo" / "input" / "n02381460_1000.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
pytestmark = [
    pytest.mark.skipif(not MODEL.is_file(), reason="needs ../shared/golden"),
    pytest.mark.skipif(importlib.util.find_spec("flask") is None, reason="cyclegan serve needs Flask"),
]


@pytest.fixture(scope="module")
def translators():
    from cyclegan.serve import load_translators

    return load_translators(str(MODEL), device="cpu")


@pytest.fixture()
def client(translators):
    from cyclegan.serve import create_app

    return create_app(translators, "latest_net_G.pth", max_bytes=400_000, max_pixels=300 * 300).test_client()


def test_api_returns_the_translation_as_png(client, translators):
    data = HORSE.read_bytes()
    r = client.post("/api/translate", data={"image": (io.BytesIO(data), "horse.png")})
    assert r.status_code == 200 and r.mimetype == "image/png"
    got = np.asarray(Image.open(io.BytesIO(r.data)))
    want = np.asarray(translators["AtoB"](Image.open(HORSE).convert("RGB")))
    assert got.shape == (256, 256, 3) and np.array_equal(got, want)
    raw = client.post("/api/translate?direction=AtoB", data=data, content_type="image/png")  # raw body works too
    assert raw.status_code == 200 and raw.data == r.data
    info = client.get("/api/info").get_json()
    assert info["directions"] == ["AtoB"] and info["max_pixels"] == 90_000


@pytest.mark.parametrize("make, status, message", [
    (lambda: b"this is not an image", 400, "not a readable image"),
    (lambda: b"", 400, "no image"),
    (lambda: _png((400, 300)), 413, "more than the limit"),
    (lambda: b"\0" * 500_000, 413, "larger than"),
])
def test_api_errors_are_one_line_json(client, make, status, message):
    r = client.post("/api/translate", data=make(), content_type="application/octet-stream")
    assert r.status_code == status
    error = r.get_json()["error"]
    assert message in error and "\n" not in error


def test_api_refuses_a_direction_the_model_lacks(client):
    r = client.post("/api/translate?direction=BtoA", data=HORSE.read_bytes())
    assert r.status_code == 400 and "AtoB" in r.get_json()["error"]


def _png(size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_run_directory_serves_both_directions(tmp_path):
    from cyclegan.import_run import import_authors_run
    from cyclegan.serve import create_app, load_translators

    run, _ = import_authors_run(GOLDEN / "default" / "checkpoints" / "golden", "imp", tmp_path)
    client = create_app(load_translators(str(run), "cpu"), "imp").test_client()
    assert client.get("/api/info").get_json()["directions"] == ["AtoB", "BtoA"]
    page = client.get("/").get_data(as_text=True)
    assert '<option value="BtoA">' in page and "hidden>" not in page.split('id="direction-label"')[1][:20]
    a = client.post("/api/translate?direction=AtoB", data=HORSE.read_bytes()).data
    b = client.post("/api/translate?direction=BtoA", data=HORSE.read_bytes()).data
    assert a != b


@pytest.fixture()
def server(translators, tmp_path):
    from werkzeug.serving import make_server

    from cyclegan.import_run import import_authors_run
    from cyclegan.serve import create_app, load_translators

    run, _ = import_authors_run(GOLDEN / "default" / "checkpoints" / "golden", "imp", tmp_path)
    app = create_app(load_translators(str(run), "cpu"), "imp", "their run, imported")
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs Playwright: pip install playwright")
def test_the_page_in_a_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 700}, accept_downloads=True)
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(server + "/")
            page.set_input_files("#file", str(HORSE))
            out = page.locator("#output")
            expect(out).to_have_js_property("naturalWidth", 256, timeout=30_000)
            expect(page.locator("#input")).to_have_js_property("naturalWidth", 256)
            expect(page.locator("#status")).to_have_text("done")
            link = page.locator("#download")
            expect(link).to_be_visible()
            assert link.get_attribute("download") == "n02381460_1000_AtoB.png"
            with page.expect_download() as dl:
                link.click()
            saved = tmp_path / "downloaded.png"
            dl.value.save_as(saved)
            assert Image.open(saved).size == (256, 256)
            first = out.get_attribute("src")
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
            # switch direction: the other generator translates the same image
            page.select_option("#direction", "BtoA")
            expect(out).not_to_have_attribute("src", first, timeout=30_000)
            expect(page.locator("#status")).to_have_text("done")
            assert link.get_attribute("download") == "n02381460_1000_BtoA.png"
            # a bad file gives the server's one line on the page
            bad = tmp_path / "bad.png"
            bad.write_bytes(b"not an image")
            page.set_input_files("#file", str(bad))
            expect(page.locator("#error")).to_contain_text("not a readable image")
            assert errors == [] or all("400" in e for e in errors)  # the browser logs the 400 response
            import os
            if os.environ.get("CYCLEGAN_SCREENSHOT"):
                page.set_input_files("#file", str(HORSE))
                page.select_option("#direction", "AtoB")
                expect(page.locator("#status")).to_have_text("done")
                page.screenshot(path=os.environ["CYCLEGAN_SCREENSHOT"], full_page=True)
        finally:
            browser.close()


def test_the_command_serves_on_loopback(tmp_path):
    """`cyclegan serve MODEL --port 0` in its own process: prints its URL, answers, stops on SIGINT."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan", "serve", str(MODEL), "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving ") and "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split()[3]
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            assert json.load(r)["directions"] == ["AtoB"]
        req = urllib.request.Request(url + "api/translate", data=HORSE.read_bytes(), method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.headers["Content-Type"] == "image/png" and Image.open(io.BytesIO(r.read())).size == (256, 256)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
