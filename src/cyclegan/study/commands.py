"""`cyclegan study` (serve the real-vs-fake study) and `cyclegan study-results` (Table 1 numbers)."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

from ..config import ConfigError
from .protocol import MIN_IMAGES, N_PRACTICE, N_SCORED


class StudyDependencyError(ConfigError):
    """Flask, needed by `cyclegan study`, is not installed."""


def add_study_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the `study` and `study-results` sub-commands to the `cyclegan` parser."""
    p = sub.add_parser(
        "study",
        help="serve the real-vs-fake perceptual study (AMT protocol of the paper) on a local web page",
        description=f"Serve the perceptual study of the CycleGAN paper (Table 1): each participant sees "
        f"{N_PRACTICE + N_SCORED} pairs (one real, one generated image, side random) and clicks the real one; "
        f"the first {N_PRACTICE} are practice with feedback, the next {N_SCORED} are scored. With several "
        f"--fake folders each participant is assigned one of them, round-robin. Each folder needs at least "
        f"{MIN_IMAGES} images (they are reused across trials); files without an image extension are ignored. "
        "Answers are stored in the --db SQLite file; restarting on the same file continues the study, "
        "if the images are the same (their SHA-256 fingerprints are stored in it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--real", type=Path, required=True, help="folder of real images")
    p.add_argument("--fake", type=Path, action="append", required=True,
                   help="folder of generated images of one algorithm; repeat for several algorithms")
    p.add_argument("--db", type=Path, default=Path("study.sqlite3"), help="SQLite file the answers are stored in")
    p.add_argument("--new-study", action="store_true",
                   help="start a new study on --db even if it holds one (the old file is renamed "
                   "DB.YYYYmmdd-HHMMSS.old, never deleted); needed after the images changed")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: reachable from the network)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds each pair is displayed before the images are hidden; None: no limit")
    p.add_argument("--seed", type=int, default=None,
                   help="make trial plans reproducible (participant k uses SEED + k); None: random")
    p.set_defaults(func=_cmd_study)

    r = sub.add_parser(
        "study-results",
        help="per algorithm, %% of scored trials where the fake was chosen (+- standard error)",
        description="Summarise a study database: per algorithm the mean over participants of the percentage "
        "of scored trials in which the generated image was judged real, +- the standard error over "
        "participants (sample std / sqrt(n)), as in Table 1 of the paper. Only finished sessions count.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument("db", type=Path, help="the --db file written by `cyclegan study`")
    r.add_argument("--json", type=Path, default=None, help="also write the results here")
    r.set_defaults(func=_cmd_study_results)


def _cmd_study(args: argparse.Namespace) -> int:
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


def _cmd_study_results(args: argparse.Namespace) -> int:
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
