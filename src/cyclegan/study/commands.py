"""`cyclegan study` (serve the real-vs-fake study) and `cyclegan study-results` (Table 1 numbers);
their options are defined with every other command's in `cyclegan.cli`."""

from __future__ import annotations

import argparse
import json
import socket
import sys

from ..config import ConfigError
from .protocol import N_PRACTICE, N_SCORED


class StudyDependencyError(ConfigError):
    """Flask, needed by `cyclegan study`, is not installed."""


def serve_study(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    try:
        from werkzeug.serving import make_server

        from .app import create_app
        from .plain_log import plain_log_handler
    except ImportError as err:
        raise StudyDependencyError(f"`cyclegan study` needs Flask ({err}); pip install 'flask>=2.3'") from None
    app = create_app(args.real, args.fake, args.db, time_limit=args.time_limit, seed=args.seed,
                     new_study=args.new_study)
    _check_port_free(args.host, args.port)
    try:
        server = make_server(args.host, args.port, app, threaded=True, request_handler=plain_log_handler())
    except (OSError, SystemExit) as err:  # werkzeug exits (after printing) when the port is taken
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({err}); pick another --port") from None
    host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    print(f"study running at http://{host}:{server.server_port}/  (answers in {args.db}; Ctrl+C to stop)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line when the address is taken (werkzeug itself would print and exit)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"cannot listen on {host}: {err.strerror}; check --host") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}; pick another --port") from None


def study_results(args: argparse.Namespace) -> int:
    from ..atomic import write_text_atomic
    from .db import read_results

    results, unfinished = read_results(args.db)
    print(f"{'algorithm':<24}{'fooled (fake chosen)':>22}{'participants':>14}{'unfinished':>12}")
    for res in results:
        print(f"{res.algorithm:<24}{res.describe():>22}{res.participants:>14}{unfinished[res.algorithm]:>12}")
    if args.json:
        payload = {"protocol": {"practice_trials": N_PRACTICE, "scored_trials": N_SCORED,
                                "stderr": "sample std of per-participant % / sqrt(participants)"},
                   "results": [dict(res.as_dict(), unfinished=unfinished[res.algorithm]) for res in results]}
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()
    return 0
