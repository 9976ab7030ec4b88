"""How a run stops when asked to: between steps, after a checkpoint, with the signal's exit status.

SIGINT (Ctrl-C), SIGTERM (a scheduler, `kill`) and SIGHUP (the terminal closed) set a flag the
loop reads between steps; the loop writes a checkpoint and raises `interrupted(...)`, which the
command line turns into exit status 128 + signal (130, 143, 129), so nobody mistakes an
interrupted run for a finished one. Loader workers ignore all three: the main process decides.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def interrupted(message: str, signum: int) -> KeyboardInterrupt:
    """The exception a run stopped by a signal raises after its checkpoint: a plain KeyboardInterrupt
    (so a Python script that called `cyclegan.train()` stops too, as on Ctrl-C anywhere else, and its
    traceback says KeyboardInterrupt) carrying the signal, which the command line turns into 128 + N."""
    err = KeyboardInterrupt(message)
    err.signum = signum  # type: ignore[attr-defined]
    return err


def exit_status(err: KeyboardInterrupt) -> int | None:
    """128 + the signal for a run stopped by `interrupted`, None for any other KeyboardInterrupt."""
    signum = getattr(err, "signum", None)
    return None if signum is None else 128 + signum


class TrainingStopped(RuntimeError):
    """Training could not go on (a data-loading worker died); the last completed step is checkpointed."""


class StopFlag:
    """Set by a stop signal; the loop checks it between steps so a checkpoint is never torn."""

    def __init__(self, announce: bool = True) -> None:
        self.signum: int | None = None
        self.announce = announce

    def __call__(self, signum: int, frame: object) -> None:
        if self.signum is not None and signum == signal.SIGINT:  # second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        first = self.signum is None
        self.signum = self.signum or signum
        if first and self.announce:
            # A step can take many seconds: say at once that the signal was heard. The leading
            # newline keeps the line off the progress bar's.
            print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                  "(Ctrl-C again leaves at once, keeping the last checkpoint)", file=sys.stderr, flush=True)


@contextmanager
def stop_on_signals(announce: bool = True) -> Iterator[StopFlag]:
    flag = StopFlag(announce)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.signal(s, flag) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def ignore_stop_signals_in_worker(_: int) -> None:
    # Ctrl-C and a closing terminal reach the whole process group; workers must leave them to
    # the main process, which saves a checkpoint before leaving (and stops them itself).
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


class WorkerDeathsBetweenSteps:
    """Hold back torch's SIGCHLD handler while the loop runs (call `hold_back()` after each new
    loader iterator, since torch installs its handler when the first one starts its workers).

    torch raises "DataLoader worker exited unexpectedly" from that handler, at whatever line the
    main process is on: possibly between the generator and the discriminator update, leaving
    a half step that no checkpoint may hold. Without it the loader notices the dead worker
    itself (it polls every few seconds while waiting for a batch) and raises from `next()`,
    between steps, where the last completed step can still be saved.
    """

    _UNSET = object()

    def __init__(self) -> None:
        self.previous: object = self._UNSET
        self.active = threading.current_thread() is threading.main_thread()

    def hold_back(self) -> None:
        if not self.active:
            return
        previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if self.previous is self._UNSET:
            self.previous = previous

    def __enter__(self) -> "WorkerDeathsBetweenSteps":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not self._UNSET:
            signal.signal(signal.SIGCHLD, self.previous if self.previous is not None else signal.SIG_DFL)


# What a DataLoader raises in the main process when a worker dies: RuntimeError from its own
# check, or ConnectionResetError when the worker was killed while handing a batch over.
WORKER_DEATH_ERRORS = (RuntimeError, ConnectionResetError)


def is_worker_death(err: BaseException) -> bool:
    if isinstance(err, ConnectionResetError):
        # killed while handing a batch's shared memory over: the main process sees the socket drop
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and "DataLoader worker" in text and (
        "exited unexpectedly" in text or "killed by signal" in text)
