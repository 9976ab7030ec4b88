"""A real HTTP server on 127.0.0.1 for the download tests: serves bytes by path, honours Range,
and can cut a connection part-way (Content-Length promised, fewer bytes sent)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Mirror:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_next: dict[str, int] = {}  # path -> bytes to send before dropping the connection, once
        self.requests: list[tuple[str, str | None, int]] = []  # (path, Range header, status)
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = mirror.files.get(self.path)
                rng = self.headers.get("Range")
                if body is None:
                    mirror.requests.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        mirror.requests.append((self.path, rng, 416))
                        self.send_error(416)
                        return
                status = 206 if start else 200
                mirror.requests.append((self.path, rng, status))
                part = body[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(part)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = mirror.cut_next.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(part[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Mirror":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
