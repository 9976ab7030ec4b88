"""Videos translate frame by frame: same rate, size and frame count, audio copied (a real clip made here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan.cli import main
from cyclegan.training.loop import train

from conftest import SHARED_DATA, make_images, tiny_config

av = pytest.importorskip("av")

FRAMES = sorted((SHARED_DATA / "horse2zebra" / "testA").glob("*.jpg"))[:7]
FPS, RATE = 6, 22050


def make_clip(path: Path, size=(96, 64)) -> None:
    """H.264 video of real horse photos at FPS, with a 440 Hz AAC tone as long as the video."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        for p in FRAMES:
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.open(p).convert("RGB").resize(size)), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        n = RATE * len(FRAMES) // FPS
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = RATE, start
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))


def _describe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        audio_packets = sum(1 for p in c.demux(c.streams.audio[0]) if p.size) if c.streams.audio else 0
        c.seek(0)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {"rate": v.average_rate, "size": (v.codec_context.width, v.codec_context.height), "frames": frames,
                "audio": [(s.codec_context.name, s.rate) for s in c.streams.audio], "audio_packets": audio_packets}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


def test_clip_translates_with_rate_size_frames_and_audio(run_dir, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    out = tmp_path / "out"
    assert main(["translate", str(run_dir), str(clip), "--output-dir", str(out), "--batch-size", "3"]) == 0
    assert "frame" in capsys.readouterr().err  # the progress bar counts frames
    src, dst = _describe(clip), _describe(out / "clip.mp4")
    assert dst["rate"] == src["rate"] == FPS and dst["size"] == src["size"] == (96, 64)
    assert len(dst["frames"]) == len(src["frames"]) == len(FRAMES)
    assert dst["audio"] == src["audio"] == [("aac", RATE)] and dst["audio_packets"] == src["audio_packets"] > 0
    # Translated, not copied: the frames differ from the input's.
    assert np.abs(dst["frames"][0].astype(int) - src["frames"][0].astype(int)).mean() > 5
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]  # no temporary left


def test_video_and_images_together_and_no_overwrite(run_dir, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, size=(64, 48))
    make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    assert main(["translate", str(run_dir), str(clip), str(tmp_path / "imgs"), "--output-dir", str(out),
                 "--no-progress"]) == 0
    assert "wrote 3 files" in capsys.readouterr().out
    assert main(["translate", str(run_dir), str(clip), "--output-dir", str(out), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_unreadable_video_is_one_line(run_dir, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert main(["translate", str(run_dir), str(bad), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cyclegan: error: cannot read video") and str(bad) in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
