"""Where translated files go: names that never collide, never overwrite, and complete files only.

Every output is planned before anything is translated (so a refusal costs nothing and
writes nothing), and written to a hidden temporary name in the output folder and renamed
into place, so a killed or disk-full run never leaves a partial file under a final name.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image


class OutputError(Exception):
    """An output cannot be written where asked; the message names the path and the fix."""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def prepare_output_dir(output_dir: Path) -> Path:
    """Create `output_dir` (and parents); one line when it is a file or cannot be created."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"--output-dir {output_dir} is a file, not a folder; pass a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create --output-dir {output_dir}: {err.strerror or err}; "
                          "pass a folder you can write to") from None
    if not os.access(output_dir, os.W_OK):
        raise OutputError(f"cannot write to --output-dir {output_dir}: permission denied; pass a folder you can write to")
    return output_dir


def plan_outputs(inputs: Sequence[Path], output_dir: Path, suffixes: Sequence[str], overwrite: bool = False,
                 subfolders: Sequence[str] = ()) -> dict[Path, Path]:
    """input -> output path (output_dir / stem + its suffix), unique among themselves.

    `suffixes[i]` is the output suffix of `inputs[i]` (".png", ".mp4", ...). Names that
    collide (a.jpg and a.png, or a.jpg from two folders) get _1, _2, ... until free, checked
    against every name already taken, so the count written is the count of inputs. Refused
    (nothing written): an output that is one of the inputs (always: --overwrite does not
    make it safe to replace what is being read), and an existing file unless `overwrite`.
    The same name is also taken in each of `subfolders` (the cycle view), checked the same way.
    """
    taken: set[str] = set()
    plan: dict[Path, Path] = {}
    for path, suffix in zip(inputs, suffixes):
        stem, n = path.stem, 0
        while (name := f"{stem}{suffix}" if n == 0 else f"{stem}_{n}{suffix}").lower() in taken:
            n += 1
        taken.add(name.lower())
        plan[path] = output_dir / name
    for target in [t for t in plan.values()] + [output_dir / s / t.name for s in subfolders for t in plan.values()]:
        for source in inputs:
            if _same_file(source, target):
                raise OutputError(f"output {target} would overwrite the input {source}; "
                                  "pass another --output-dir (inputs are never overwritten)")
        if target.exists() and not overwrite:
            raise OutputError(f"output {target} already exists; pass another --output-dir, "
                              "or --overwrite to replace files there")
    return plan


@contextmanager
def temporary_output(target: Path) -> Iterator[Path]:
    """A hidden temporary path beside `target`, renamed onto it when the block succeeds.

    On any error the temporary file is removed and an OSError becomes one OutputError line
    (disk full, read-only file system, ...).
    """
    # Ends in .tmp, not the image suffix: a folder rescanned as input never picks it up.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"could not write {target}: {err.strerror or err}; nothing was left under that name "
                          "(free some space or pass another --output-dir)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(image: Image.Image, target: Path) -> Path:
    """Encode one translated image to `target` (format from its suffix), atomically.

    The one place outputs are encoded: depth and format choices belong here.
    """
    with temporary_output(target) as tmp:
        image.save(tmp, format=Image.registered_extensions().get(target.suffix.lower(), "PNG"))
    return target
