"""One file over HTTP into place: progress bar, resume of a partial file, atomic rename, verification.

Used by the pretrained zoo and the dataset downloads. The partial file lies beside the
target as NAME.part; a later call resumes it with an HTTP Range request (a server that
ignores Range sends the whole file again, and the partial one is rewritten). Only a
complete file that passed `verify` is renamed to its final name, so a reader never
sees half a file. Standard library only (urllib).
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm import tqdm

CHUNK = 1 << 16
TIMEOUT_S = 30


class DownloadError(RuntimeError):
    """A download failed, or the file it fetched is not what was expected."""


def _offline_hint(url: str, dest: Path) -> str:
    return f"without network, fetch {url} by hand and put it at {dest}"


def download(url: str, dest: str | Path, *, progress: bool = True, verify: Callable[[Path], None] | None = None,
             timeout: float = TIMEOUT_S) -> Path:
    """Fetch `url` to `dest` (resuming DEST.part), check it with `verify(path)`, rename it into place.

    `verify` raises to refuse a file; a refused file is deleted so the next call starts afresh.
    Raises DownloadError in one line: the reason, and where to put the file by hand.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cyclegan", **({"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the partial file is already whole (or longer than the file): check it
            return _finish(part, dest, url, verify)
        raise DownloadError(f"could not download {url}: HTTP {err.code} {err.reason}; {_offline_hint(url, dest)}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise DownloadError(f"could not download {url}: {reason}; {_offline_hint(url, dest)}") from None
    with response:
        resumed = response.status == 206
        if not resumed:
            offset = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=dest.name, disable=not progress, leave=False)
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except (http.client.IncompleteRead, OSError, http.client.HTTPException) as err:
            raise DownloadError(
                f"download of {url} was interrupted after {received} bytes ({type(err).__name__}); run the same "
                f"command again to resume from {part}, or {_offline_hint(url, dest)}"
            ) from None
        finally:
            bar.close()
    if total is not None and received < total:
        raise DownloadError(f"download of {url} was interrupted after {received} of {total} bytes; run the same "
                            f"command again to resume from {part}, or {_offline_hint(url, dest)}")
    return _finish(part, dest, url, verify)


def _finish(part: Path, dest: Path, url: str, verify: Callable[[Path], None] | None) -> Path:
    if verify is not None:
        try:
            verify(part)
        except Exception as err:  # noqa: BLE001 - whatever the check raises, the file is refused
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url} did not give a usable file ({err}); it was deleted, try again, or "
                                f"{_offline_hint(url, dest)}") from None
    os.replace(part, dest)
    return dest
