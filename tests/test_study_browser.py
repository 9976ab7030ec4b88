"""End to end in a real browser: headless Debian Chromium driven by Playwright completes a study session.

Needs `apt-get install chromium` (/usr/bin/chromium) and `pip install playwright` (no `playwright install`:
the system Chromium is used).
"""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import make_images

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium: apt-get install -y chromium"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs Playwright: pip install playwright"),
    pytest.mark.skipif(importlib.util.find_spec("flask") is None, reason="cyclegan study needs Flask: pip install flask"),
]


@pytest.fixture()
def server(tmp_path):
    from werkzeug.serving import make_server

    from cyclegan.study.app import create_app

    real, fake = tmp_path / "real", tmp_path / "cyclegan"
    make_images(real, 6, size=(64, 64), seed=1)
    make_images(fake, 5, size=(64, 64), seed=2)
    db = tmp_path / "study.sqlite3"
    app = create_app(real, [fake], db, time_limit=0.6, seed=0)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", db
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_browser_completes_a_session(server):
    from playwright.sync_api import expect, sync_playwright

    url, db = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(url + "/")
            page.click("#start")
            page.wait_for_selector("#answer-form")
            # both images really load and render, then the display limit hides them
            # (waits for the loads: on a busy machine they may still be in flight when the form appears)
            # (no wait_for_function: its polling evaluates a string, which the page's CSP forbids)
            stimuli = page.locator("img.stimulus")
            expect(stimuli).to_have_count(2, timeout=10_000)
            for i in range(2):
                expect(stimuli.nth(i)).to_have_js_property("complete", True, timeout=10_000)
                expect(stimuli.nth(i)).to_have_js_property("naturalWidth", 64, timeout=10_000)
            page.wait_for_selector("#img-left", state="hidden")
            assert page.is_visible("#hidden-note")
            feedback = []
            for i in range(50):
                side = "left" if i % 2 else "right"
                with page.expect_navigation():
                    page.click(f"#choose-{side}")  # still clickable after the images are hidden
                feedback.append(page.locator("#feedback").count() == 1)
            page.wait_for_selector("#finished")
            assert feedback == [True] * 10 + [False] * 40
            # a second visit from the same browser cannot start another session
            page.goto(url + "/")
            assert page.locator("#already-done").count() == 1 and page.locator("#start").count() == 0
            assert errors == []
        finally:
            browser.close()

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT t.position, t.practice, r.choice, t.fake_side, r.fake_chosen FROM responses r "
                            "JOIN trials t ON t.id = r.trial_id ORDER BY t.position").fetchall()
        finished = conn.execute("SELECT COUNT(*) FROM participants WHERE finished_at IS NOT NULL").fetchone()[0]
    finally:
        conn.close()
    assert finished == 1 and len(rows) == 50
    assert [r[2] for r in rows] == ["left" if i % 2 else "right" for i in range(50)]
    assert sum(r[1] for r in rows) == 10
    assert all(r[4] == (r[2] == r[3]) for r in rows)
