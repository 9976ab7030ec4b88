"""The authors' CycleGAN datasets by name: download, extract safely, check the layout.

    cyclegan datasets list
    cyclegan datasets download horse2zebra --root datasets     # -> datasets/horse2zebra/{trainA,trainB,testA,testB}

Archives come from CYCLEGAN_DATASETS_URL (default: the authors' server), NAME.zip under
it. Extraction refuses, in one line and before writing anything, entries that would land
outside the target (absolute paths, `..`, symbolic links) and archives whose expanded
size or compression ratio is absurd (zip bombs); sizes are also counted while writing,
since a zip's declared sizes can lie. Files are extracted into a hidden folder and
renamed to ROOT/NAME only once the layout is checked, so ROOT/NAME is complete or absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .config import ConfigError
from .data.images import is_image_file
from .download import DownloadError, download

DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
MAX_EXPANDED = 32 * 2**30  # the largest of the authors' datasets expands to a few GiB
MAX_RATIO = 200  # photos do not compress; a zip bomb's ratio is in the thousands
UNALIGNED = ("trainA", "trainB", "testA", "testB")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    what: str
    folders: tuple[str, ...] = UNALIGNED
    note: str = ""


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("apple2orange", "apples <-> oranges, ImageNet"),
    DatasetInfo("summer2winter_yosemite", "Yosemite in summer <-> winter, Flickr"),
    DatasetInfo("horse2zebra", "horses <-> zebras, ImageNet"),
    DatasetInfo("monet2photo", "Monet paintings <-> landscape photos"),
    DatasetInfo("cezanne2photo", "Cezanne paintings <-> photos"),
    DatasetInfo("ukiyoe2photo", "Ukiyo-e prints <-> photos"),
    DatasetInfo("vangogh2photo", "Van Gogh paintings <-> photos"),
    DatasetInfo("maps", "satellite photos <-> Google maps, New York"),
    DatasetInfo("cityscapes", "street photos <-> label colours", note="not on the authors' server for licence "
                "reasons: register at https://www.cityscapes-dataset.com and prepare it with their script"),
    DatasetInfo("facades", "facade photos <-> CMP labels"),
    DatasetInfo("iphone2dslr_flower", "iPhone <-> DSLR flower photos"),
    DatasetInfo("ae_photos", "photos for the authors' evaluation", folders=("testA",)),
    DatasetInfo("mini", "a handful of horse2zebra images, for smoke tests"),
    DatasetInfo("mini_pix2pix", "a handful of facades pairs", folders=("train",)),
    DatasetInfo("mini_colorization", "a handful of colorization images", folders=("train",)),
    DatasetInfo("grumpifycat", "cats <-> Grumpy Cat", folders=("trainA", "trainB")),
]}


class UnsafeArchiveError(DownloadError):
    """An archive would write outside its target, or expands absurdly."""


def datasets_url(name: str) -> str:
    return f"{os.environ.get('CYCLEGAN_DATASETS_URL', DATASETS_URL).rstrip('/')}/{name}.zip"


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_archive(archive: Path, max_expanded: int = MAX_EXPANDED, max_ratio: float = MAX_RATIO) -> list[zipfile.ZipInfo]:
    """The members of a zip, all checked; raises UnsafeArchiveError for the first bad one."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{archive} is not a readable zip archive: {err}") from None
    with zf:
        members = zf.infolist()
    total = 0
    for info in members:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchiveError(f"{archive}: refused, entry {name!r} is an absolute path")
        if ".." in parts:
            raise UnsafeArchiveError(f"{archive}: refused, entry {name!r} climbs out of the target with '..'")
        if _is_symlink(info):
            raise UnsafeArchiveError(f"{archive}: refused, entry {name!r} is a symbolic link")
        total += info.file_size
    packed = max(1, archive.stat().st_size)
    if total > max_expanded:
        raise UnsafeArchiveError(f"{archive}: refused, it would expand to {total} bytes (limit {max_expanded})")
    if total / packed > max_ratio:
        raise UnsafeArchiveError(f"{archive}: refused, it would expand {total / packed:.0f} times its size "
                                 f"(limit {max_ratio:g}): a zip bomb, not images")
    return members


def extract_safely(archive: Path, target: Path, max_expanded: int = MAX_EXPANDED, max_ratio: float = MAX_RATIO) -> None:
    """Extract `archive` into the (new) folder `target`, refusing unsafe archives before writing."""
    members = check_archive(archive, max_expanded, max_ratio)
    root = target.resolve()
    written = 0
    with zipfile.ZipFile(archive) as zf:
        for info in members:
            dest = (root / info.filename).resolve()
            if dest != root and root not in dest.parents:  # belt and braces after the checks above
                raise UnsafeArchiveError(f"{archive}: refused, entry {info.filename!r} lands outside {target}")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_expanded:  # declared sizes can lie
                        raise UnsafeArchiveError(f"{archive}: refused, it expands beyond {max_expanded} bytes")
                    out.write(chunk)


def check_layout(folder: Path, info: DatasetInfo) -> None:
    missing = [f for f in info.folders if not (folder / f).is_dir()
               or not any(is_image_file(p) for p in (folder / f).iterdir())]
    if missing:
        raise DownloadError(f"{folder}: the archive did not give the expected layout (no images in "
                            f"{', '.join(missing)}); nothing was kept")


def download_dataset(name: str, root: str | Path, progress: bool = True, max_expanded: int = MAX_EXPANDED,
                     max_ratio: float = MAX_RATIO) -> Path:
    """ROOT/NAME with the dataset's images, downloaded and extracted when not there yet."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; `cyclegan datasets list` shows the {len(DATASETS)} names")
    info = DATASETS[name]
    if info.note:
        raise ConfigError(f"{name}: {info.note}")
    root = Path(root)
    final = root / name
    if final.exists():
        check_layout(final, info)
        return final
    archive = download(datasets_url(name), root / f"{name}.zip", progress=progress,
                       verify=lambda p: check_archive(p, max_expanded, max_ratio))
    staging = root / f".{name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        extract_safely(archive, staging, max_expanded, max_ratio)
        # The authors' archives hold one top folder NAME/; accept the bare folders too.
        inner = staging / name if (staging / name).is_dir() else staging
        check_layout(inner, info)
        os.replace(inner, final)
    except BaseException:
        archive.unlink(missing_ok=True)  # refused or broken: the next call downloads afresh
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink(missing_ok=True)  # our own download, extracted and checked
    return final


def cmd_list(args: argparse.Namespace) -> int:
    width = max(map(len, DATASETS))
    for d in DATASETS.values():
        print(f"{d.name:<{width}}  {d.what}" + (f"  [{d.note}]" if d.note else ""))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    existed = (args.root / args.name).exists()
    folder = download_dataset(args.name, args.root, args.progress)
    counts = ", ".join(f"{f} {sum(1 for p in (folder / f).iterdir() if is_image_file(p))}"
                       for f in DATASETS[args.name].folders)
    print(f"{'already there' if existed else 'ready'}: {folder} ({counts}); train with: cyclegan train {folder}")
    return 0
