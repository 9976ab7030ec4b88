"""Videos translated frame by frame with PyAV: same container, frame rate, size and timestamps; audio copied.

    translate_video(translator, Path("clip.mp4"), Path("out/clip.mp4"), batch_size=8)

Frames are decoded, translated `batch_size` at a time (as a batch of equally sized images),
and encoded with the input's video codec when PyAV can encode it (H.264 in the usual MP4),
else MPEG-4 Part 2. Audio (and only audio) streams are copied packet by packet, unchanged.
The file is written under a temporary name in the output folder and renamed when complete.
PyAV is the optional extra `video`: pip install 'cyclegan[video]'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from .config import ConfigError
from .data.images import ImageLoadError
from .outputs import temporary_output

if TYPE_CHECKING:
    from .translate import Translator

# Output muxer by suffix: the temporary file's name cannot tell FFmpeg which container to write.
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_FALLBACK_CODEC = {"webm": "libvpx-vp9"}


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError("translating video needs PyAV: pip install 'cyclegan[video]' (or pip install av)") from None
    return av


def _encoder(av: Any, name: str, muxer: str) -> str:
    """The input's codec when PyAV can encode it, else one the container takes."""
    try:
        av.codec.Codec(name, "w")
        return name
    except Exception:  # noqa: BLE001 - PyAV raises several types for an unknown encoder
        return _FALLBACK_CODEC.get(muxer, "mpeg4")


def _to_tensor(frames: list[np.ndarray], channels: int) -> torch.Tensor:
    """HxWx3 uint8 RGB frames -> (N, C, H, W) in [-1, 1]; grayscale by ITU-R 601 luma, as Pillow's 'L'."""
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()
    if channels == 1:
        x = (x[:, 0:1] * 299 + x[:, 1:2] * 587 + x[:, 2:3] * 114) / 1000
    return x / 127.5 - 1


def _to_rgb(out: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> N x H x W x 3 uint8."""
    arr = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if arr.shape[1] == 1:
        arr = arr.expand(-1, 3, -1, -1)
    return arr.permute(0, 2, 3, 1).contiguous().numpy()


def translate_video(translator: "Translator", source: Path, target: Path, batch_size: int = 1,
                    progress: bool = True, tile: int | None = None, overlap: int | None = None) -> Path:
    """Translate every frame of `source` into `target` (suffix picks the container); returns `target`."""
    av = _av()
    muxer = MUXERS.get(target.suffix.lower())
    if muxer is None:
        raise ConfigError(f"cannot write video {target}: unknown container {target.suffix}; "
                          f"use one of {' '.join(MUXERS)}")
    try:
        container = av.open(str(source))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise ImageLoadError(f"cannot read video {source}: {str(err).splitlines()[0]} "
                             "(PyAV/FFmpeg cannot decode it; convert it to MP4 with H.264)") from None
    with container:
        if not container.streams.video:
            raise ImageLoadError(f"cannot read video {source}: it holds no video stream")
        video_in = container.streams.video[0]
        audio_in = list(container.streams.audio)
        with temporary_output(target) as tmp, av.open(str(tmp), mode="w", format=muxer) as out:
            video_out = out.add_stream(_encoder(av, video_in.codec_context.name, muxer), rate=video_in.average_rate)
            video_out.width, video_out.height = video_in.codec_context.width, video_in.codec_context.height
            video_out.pix_fmt = "yuv420p"
            video_out.time_base = video_in.time_base
            audio_map = {s.index: out.add_stream_from_template(s) for s in audio_in}
            bar = tqdm(total=video_in.frames or None, disable=not progress, unit="frame", desc=source.name)
            pending: list[Any] = []

            def flush() -> None:
                frames = [f.to_ndarray(format="rgb24") for f in pending]
                x = _to_tensor(frames, translator.in_channels)
                translated = _to_rgb(translator.translate_tensor(x, tile=tile, overlap=overlap).cpu())
                for frame, arr in zip(pending, translated):
                    new = av.VideoFrame.from_ndarray(arr, format="rgb24")
                    new.pts, new.time_base = frame.pts, frame.time_base
                    out.mux(video_out.encode(new))
                bar.update(len(pending))
                pending.clear()

            try:
                for packet in container.demux(video_in, *audio_in):
                    if packet.stream.index in audio_map:
                        if packet.dts is not None:  # the demuxer's final empty packet
                            packet.stream = audio_map[packet.stream.index]
                            out.mux(packet)
                        continue
                    for frame in packet.decode():
                        pending.append(frame)
                        if len(pending) == batch_size:
                            flush()
                if pending:
                    flush()
                out.mux(video_out.encode(None))  # drain the encoder
            except av.FFmpegError as err:
                raise ImageLoadError(f"cannot read video {source}: {str(err).splitlines()[0]}") from None
            finally:
                bar.close()
    return target
