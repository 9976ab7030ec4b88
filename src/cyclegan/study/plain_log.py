"""The study server's request log without ANSI colour codes when it goes to a file or a pipe.

werkzeug colours error and redirect lines whatever stderr is; in a log file the escape
codes are noise (`\\x1b[33m"GET /x HTTP/1.1"\\x1b[0m 404`).
"""

from __future__ import annotations

import re
import sys

from werkzeug.serving import WSGIRequestHandler

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _PlainLogHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args) -> None:  # noqa: A002 - werkzeug's signature
        super().log(type, _ANSI.sub("", message), *(_ANSI.sub("", a) if isinstance(a, str) else a for a in args))


def plain_log_handler() -> type[WSGIRequestHandler]:
    """werkzeug's request handler, with plain log lines unless stderr is a terminal."""
    return WSGIRequestHandler if sys.stderr.isatty() else _PlainLogHandler
