"""`cyclegan datasets`: the authors' datasets by name, from a real server on 127.0.0.1, with resume and safe
extraction; the hostile archives are made here."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from cyclegan.cli import main
from cyclegan.dataset_zoo import DATASETS, UnsafeArchiveError, download_dataset
from cyclegan.download import DownloadError
from conftest import make_images
from mirror import Mirror


def _dataset_zip(tmp_path: Path, name: str, folders=("trainA", "trainB", "testA", "testB")) -> bytes:
    src = tmp_path / "src" / name
    for i, folder in enumerate(folders):
        make_images(src / folder, 2, size=(16, 16), seed=i, suffix=".jpg")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # as the authors' archives: one top folder NAME/
        for path in sorted(src.rglob("*")):
            zf.write(path, path.relative_to(src.parent).as_posix())
    return buf.getvalue()


@pytest.fixture()
def mirror(monkeypatch):
    with Mirror() as m:
        monkeypatch.setenv("CYCLEGAN_DATASETS_URL", m.url + "/datasets")
        yield m


def test_list_has_the_authors_names(capsys):
    assert main(["datasets", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"horse2zebra", "monet2photo", "facades", "maps", "apple2orange"} <= set(names) == set(DATASETS)


def test_download_extract_and_check(mirror, tmp_path, capsys):
    mirror.files["/datasets/mini.zip"] = _dataset_zip(tmp_path, "mini")
    root = tmp_path / "datasets"
    assert main(["datasets", "download", "mini", "--root", str(root), "--no-progress"]) == 0
    assert "ready" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "mini").iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert len(list((root / "mini" / "trainA").glob("*.jpg"))) == 2
    assert sorted(p.name for p in root.iterdir()) == ["mini"]  # no zip, no staging folder left
    n = len(mirror.requests)
    assert main(["datasets", "download", "mini", "--root", str(root), "--no-progress"]) == 0
    assert "already there" in capsys.readouterr().out and len(mirror.requests) == n


def test_an_interrupted_archive_resumes(mirror, tmp_path):
    body = _dataset_zip(tmp_path, "horse2zebra")
    mirror.files["/datasets/horse2zebra.zip"] = body
    mirror.cut_next["/datasets/horse2zebra.zip"] = len(body) // 3
    root = tmp_path / "datasets"
    with pytest.raises(DownloadError, match="interrupted"):
        download_dataset("horse2zebra", root, progress=False)
    assert (root / "horse2zebra.zip.part").stat().st_size == len(body) // 3 and not (root / "horse2zebra").exists()
    download_dataset("horse2zebra", root, progress=False)
    assert mirror.requests[-1][1:] == (f"bytes={len(body) // 3}-", 206)
    assert len(list((root / "horse2zebra" / "testB").iterdir())) == 2


def _hostile(kind: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("facades/trainA/ok.jpg", b"x" * 10)
        if kind == "absolute":
            zf.writestr("/tmp/evil_abs.txt", b"owned")
        elif kind == "dotdot":
            zf.writestr("facades/../../evil_dotdot.txt", b"owned")
        elif kind == "symlink":
            info = zipfile.ZipInfo("facades/trainB/link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
        elif kind == "bomb":
            zf.writestr("facades/trainB/zeros.jpg", b"\0" * (20 * 2**20))  # 20 MiB into about 20 KiB
    return buf.getvalue()


@pytest.mark.parametrize("kind, message", [
    ("absolute", "absolute path"), ("dotdot", "'..'"), ("symlink", "symbolic link"), ("bomb", "zip bomb"),
])
def test_hostile_archives_are_refused_in_one_line(mirror, tmp_path, capsys, kind, message):
    mirror.files["/datasets/facades.zip"] = _hostile(kind)
    root = tmp_path / "work" / "datasets"
    assert main(["datasets", "download", "facades", "--root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert list(root.iterdir()) == []  # nothing extracted, the refused archive deleted
    assert not (tmp_path / "work" / "evil_dotdot.txt").exists() and not (tmp_path / "evil_dotdot.txt").exists()


def test_expanded_size_limit(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_dataset_zip(tmp_path, "mini"))
    from cyclegan.dataset_zoo import check_archive

    check_archive(archive)
    with pytest.raises(UnsafeArchiveError, match="would expand to"):
        check_archive(archive, max_expanded=100)


def test_wrong_layout_keeps_nothing(mirror, tmp_path, capsys):
    mirror.files["/datasets/horse2zebra.zip"] = _dataset_zip(tmp_path, "horse2zebra", folders=("trainA",))
    root = tmp_path / "datasets"
    assert main(["datasets", "download", "horse2zebra", "--root", str(root), "--no-progress"]) == 2
    assert "expected layout" in capsys.readouterr().err and list(root.iterdir()) == []


def test_missing_on_the_server_and_cityscapes_are_one_line(mirror, tmp_path, capsys):
    assert main(["datasets", "download", "maps", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and f"{mirror.url}/datasets/maps.zip" in err
    assert main(["datasets", "download", "cityscapes", "--root", str(tmp_path)]) == 2
    assert "cityscapes-dataset.com" in capsys.readouterr().err
