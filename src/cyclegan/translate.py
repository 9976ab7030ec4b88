"""Inference: a trained generator applied to images of any size, from a run directory.

    translator = Translator.from_run("checkpoints/h2z", direction="AtoB")
    zebra = translator(Image.open("horse.jpg"))          # PIL in, PIL out
    batch_out = translator(batch_in)                      # (N, C, H, W) in [-1, 1] in, same out
    big = translator(Image.open("photo.jpg"), tile=512)   # 512 px tiles, equal to the whole-image result
"""

from __future__ import annotations

import sys
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence, overload

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from .config import ConfigError, Direction, ModelConfig, TrainConfig
from .cpu_threads import LoadAwareThreads
from .data.formats import domain_format
from .data.images import BAD_IMAGE_HINT, ImageLoadError, list_inputs, to_pil, to_tensor
from .data.native import DomainFormat, encode_image, image_tensor, output_suffix, preview, read_image
from .device import resolve_device
from .methods import check_config, method_of
from .memory import available_bytes, forward_bytes, human, image_bytes, tile_for_budget
from .outputs import plan_outputs, prepare_output_dir, temporary_output, write_image
from .tiling import ExactTiler, receptive_radius
from .precision import check_amp
from .rundir import CheckpointError, RunDir, RunDirError, find_config, load_weights, weights_file

# Smallest side the generators take: a ResNet's 1/4-scale bottleneck must keep 2 pixels for its
# reflection padding and instance norm. Smaller sides are replicated up and averaged back.
MIN_SIDE = 8
MIN_TILE = 16
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


def upscale_tiny(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Repeat each pixel (fy, fx) times so that both sides reach MIN_SIDE; return the factors.

    Pixel replication (not interpolation) keeps the image's values, and averaging the
    output over the same (fy, fx) blocks (`downscale_tiny`) returns exactly the input's size.
    """
    h, w = x.shape[-2:]
    fy, fx = -(-MIN_SIDE // h), -(-MIN_SIDE // w)
    if fy > 1:
        x = x.repeat_interleave(fy, dim=-2)
    if fx > 1:
        x = x.repeat_interleave(fx, dim=-1)
    return x, (fy, fx)


def downscale_tiny(out: torch.Tensor, factors: tuple[int, int]) -> torch.Tensor:
    return F.avg_pool2d(out, factors) if factors != (1, 1) else out


def check_finite(out: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(out).all():
        raise CheckpointError("the generator produced non-finite values (NaN or inf); its weights are damaged "
                              "or from a run that diverged; nothing was written for this image")
    return out


def _channels(cfg: ModelConfig, direction: Direction) -> tuple[int, int]:
    return (cfg.input_nc, cfg.output_nc) if direction == "AtoB" else (cfg.output_nc, cfg.input_nc)


def _load_generator(cfg: TrainConfig, weights: Path, direction: Direction, device: torch.device) -> nn.Module:
    net = method_of(cfg).translation_generator(cfg.model, direction, cfg.data.crop_size)
    load_weights(net, weights)
    return net.to(device).eval()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to a multiple (the generator's stride); return the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflection needs the pad smaller than the side; replicate covers tiny images.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def tile_overlap(tile: int | None, overlap: int | None) -> int | None:
    """The overlap used with `tile`, checked: `overlap`, or tile // 8 when None (None without a tile).

    An eighth of the tile keeps the extra work small ((8/7)^2, about 1.3x) while
    giving the blend tens of pixels to fade over at the usual 256-1024 px tiles.
    """
    if tile is None:
        if overlap is not None:
            raise ConfigError("a tile overlap needs a tile size")
        return None
    if tile < MIN_TILE:
        raise ConfigError(f"--tile must be at least {MIN_TILE} pixels, got {tile}")
    overlap = tile // 8 if overlap is None else overlap
    if overlap < 0:
        raise ConfigError(f"tile overlap must be 0 or more pixels, got {overlap}")
    if 2 * overlap > tile:
        raise ConfigError(f"tile overlap {overlap} is more than half the tile {tile}; "
                          f"use an overlap of at most {tile // 2} or a larger tile")
    return overlap


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Origins of the tiles along one side, spread evenly, neighbours sharing at least `overlap` pixels.

    The first tile starts at 0 and the last ends at `size`, so every tile has the
    full `tile` length (one tile of `size` when the side is shorter): all tiles of
    an image then have one shape and stack into a batch.
    """
    if size <= tile:
        return [0]
    count = -(-(size - tile) // (tile - overlap)) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def _window(start: int, length: int, size: int, overlap: int) -> torch.Tensor:
    """Blend weight along one side of a tile: raised-cosine ramps over `overlap` pixels
    at edges shared with a neighbour, flat at the image's own border.

    The half-pixel offset keeps every weight above zero and makes a rising ramp and
    the mirrored falling one sum to exactly 1 where two tiles meet at the minimum
    overlap; elsewhere the normalisation by the summed weights takes care of it.
    """
    weight = torch.ones(length)
    if overlap == 0:
        return weight
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(overlap) + 0.5) / overlap)
    if start > 0:
        weight[:overlap] = ramp
    if start + length < size:
        weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
    return weight


class Translator:
    """A generator ready to translate, with its inverse when the cycle view is wanted.

    With `amp=True` (CUDA, or a CPU with native bfloat16) the networks run under
    bfloat16 autocast; outputs are returned as float32 and differ slightly from the
    float32 path. (No channels_last: with instance norm and reflection padding between
    the convolutions it measured slower on an H200 and on CPUs; docs/benchmarks.md.)
    """

    def __init__(
        self,
        generator: nn.Module,
        multiple: int,
        in_channels: int,
        device: torch.device,
        inverse: nn.Module | None = None,
        amp: bool = False,
        formats: tuple[DomainFormat, DomainFormat] | None = None,
    ):
        if amp:
            check_amp(device)
        self.generator = generator
        self.inverse = inverse
        self.multiple = multiple
        self.in_channels = in_channels
        self.device = device
        self.amp = amp
        # how inputs are read and outputs written (default: 8-bit images, PNG out)
        self.format_in, self.format_out = formats or (DomainFormat(in_channels), DomainFormat(3))
        self._tilers: dict[tuple[int, int], ExactTiler] = {}

    @classmethod
    def from_run(
        cls, run_dir: str | Path, direction: Direction = "AtoB", device: str = "auto", with_inverse: bool = False,
        amp: bool = False,
    ) -> "Translator":
        """Load the latest checkpoint of a run directory made by `cyclegan train`."""
        run = RunDir(run_dir)
        cfg = run.read_config()
        checkpoint = run.latest_checkpoint(notify=_note)
        if checkpoint is None:
            raise RunDirError(f"{run.path} has no complete checkpoint yet; train it first "
                              f"(cyclegan train ... --name {run.path.name})")
        forward, backward = ("gen_ab", "gen_ba") if direction == "AtoB" else ("gen_ba", "gen_ab")
        return cls._build(cfg, direction, weights_file(checkpoint, forward),
                          weights_file(checkpoint, backward) if with_inverse else None, device, amp)

    @classmethod
    def from_pretrained(cls, model: str | Path, direction: Direction = "AtoB", device: str = "auto",
                        with_inverse: bool = False, amp: bool = False, **kwargs: Any) -> "Translator":
        """Any MODEL: a run directory, a zoo name (`horse2zebra`), an authors' .pth, or an exported
        .safetensors with its JSON (see cyclegan.pretrained.open_model)."""
        from .pretrained import open_model

        return open_model(model, direction, device, with_inverse=with_inverse, amp=amp, **kwargs)

    @classmethod
    def from_weights(
        cls, weights: str | Path, config: str | Path | None = None, direction: Direction = "AtoB", device: str = "auto",
        amp: bool = False,
    ) -> "Translator":
        """Load one generator's safetensors file, built as described by a run's config.json.

        `direction` says which way that generator maps (AtoB for gen_ab, BtoA for gen_ba); `config`
        None: the config.json of the run the file belongs to.
        """
        weights = Path(weights)
        cfg = TrainConfig.load(Path(config) if config is not None else find_config(weights))
        return cls._build(cfg, direction, weights, None, device, amp)

    @classmethod
    def _build(cls, cfg: TrainConfig, direction: Direction, weights: Path, inverse: Path | None, device: str,
               amp: bool):
        check_config(cfg)
        dev = resolve_device(device)
        in_nc, _ = _channels(cfg.model, direction)
        if not weights.is_file():
            raise RunDirError(f"weights file {weights} not found")
        gen = _load_generator(cfg, weights, direction, dev)
        backward: Direction = "BtoA" if direction == "AtoB" else "AtoB"
        inv = _load_generator(cfg, inverse, backward, dev) if inverse is not None else None
        multiple = method_of(cfg).size_multiple(cfg.model)
        formats = (domain_format(cfg, "A"), domain_format(cfg, "B"))
        return cls(gen, multiple, in_nc, dev, inv, amp, formats if direction == "AtoB" else formats[::-1])

    @torch.no_grad()
    def translate_tensor(
        self,
        x: torch.Tensor,
        net: nn.Module | None = None,
        tile: int | None = None,
        overlap: int | None = None,
        tile_batch: int = 4,
    ) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> translated (N, C', H, W) float32, any H and W (down to 1x1).

        With `tile`, images with a side longer than `tile` are translated tile by tile
        so that memory follows the tile, not the image. For the ResNet generators (any
        network of local layers, see tiling.receptive_radius) the tiles are exact: every
        instance norm gets the whole image's statistics (tiling.ExactTiler), and the result
        equals the whole-image one up to float rounding. The U-Net sees the whole image
        from its bottleneck, so it cannot be tiled exactly: its tiles overlap (`overlap`
        pixels, default tile // 8), run `tile_batch` per pass and are blended with
        raised-cosine weights; each uses its own statistics, so the result is close to,
        not equal to, the whole-image one. Images that fit in one tile take the
        whole-image path unchanged.
        The result is on `x`'s device, wherever the networks run.
        Raises CheckpointError when the output holds NaN or inf.
        """
        return self._translate(x, net, tile, overlap, tile_batch).to(x.device)

    def _translate(self, x: torch.Tensor, net: nn.Module | None, tile: int | None, overlap: int | None,
                   tile_batch: int) -> torch.Tensor:
        """translate_tensor, the result left on the translator's device."""
        net = self.generator if net is None else net
        overlap = tile_overlap(tile, overlap)
        x = x.to(self.device)
        if tile is None or overlap is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
            return check_finite(self._forward(net, x))
        if tile_batch < 1:
            raise ConfigError(f"tile_batch must be at least 1, got {tile_batch}")
        if self.tileable(net):
            return check_finite(self._exact_tiled(net, x, tile))
        return check_finite(self._tiled(net, x, tile, overlap, tile_batch))

    def tileable(self, net: nn.Module | None = None) -> bool:
        """Whether `net` (default: the generator) can be tiled exactly."""
        return receptive_radius(self.generator if net is None else net) is not None

    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Upscale tiny sides, pad to the size multiple, apply `net`, undo both."""
        x, factors = upscale_tiny(x)
        padded, (h, w) = pad_to_multiple(x, self.multiple)
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext():
            out = net(padded)
        return downscale_tiny(out[..., :h, :w].float(), factors)

    def _forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self._run(net, x)

    def _exact_tiled(self, net: nn.Module, x: torch.Tensor, tile: int) -> torch.Tensor:
        key = (id(net), tile)
        if key not in self._tilers:
            self._tilers[key] = ExactTiler(net, tile)
        return self._run(self._tilers[key], x)

    def _tiled(self, net: nn.Module, x: torch.Tensor, tile: int, overlap: int, tile_batch: int) -> torch.Tensor:
        n, _, h, w = x.shape
        th, tw = min(tile, h), min(tile, w)
        rows = {r: _window(r, th, h, overlap).to(self.device) for r in tile_starts(h, tile, overlap)}
        cols = {c: _window(c, tw, w, overlap).to(self.device) for c in tile_starts(w, tile, overlap)}
        # The weights are separable, so their sum over all tiles is the outer product
        # of the per-side sums: one (H, W) map, computed without visiting the tiles.
        row_sum, col_sum = torch.zeros(h, device=self.device), torch.zeros(w, device=self.device)
        for r, weight in rows.items():
            row_sum[r:r + th] += weight
        for c, weight in cols.items():
            col_sum[c:c + tw] += weight
        origins = [(i, r, c) for i in range(n) for r in rows for c in cols]
        out: torch.Tensor | None = None
        for first in range(0, len(origins), tile_batch):
            chunk = origins[first:first + tile_batch]
            crops = torch.stack([x[i, :, r:r + th, c:c + tw] for i, r, c in chunk])
            translated = self._forward(net, crops)
            if out is None:
                out = torch.zeros(n, translated.shape[1], h, w, device=self.device)
            for (i, r, c), piece in zip(chunk, translated):
                out[i, :, r:r + th, c:c + tw] += piece * torch.outer(rows[r], cols[c])
        assert out is not None  # at least one tile: the image is larger than a tile
        return out / torch.outer(row_sum, col_sum)

    @overload
    def __call__(self, image: Image.Image, tile: int | None = None, overlap: int | None = None) -> Image.Image: ...
    @overload
    def __call__(self, image: torch.Tensor, tile: int | None = None, overlap: int | None = None) -> torch.Tensor: ...

    def __call__(self, image, tile=None, overlap=None):
        if isinstance(image, Image.Image):
            if not (self.format_in.classic and self.format_out.classic):
                raise ConfigError("a PIL image in and out is for 8-bit models; for 16-bit, float or N-channel "
                                  "models use translate_files, or tensors (cyclegan.data.native.image_tensor)")
            mode = "RGB" if self.in_channels == 3 else "L"
            x = to_tensor(image.convert(mode)).unsqueeze(0)
            return to_pil(self.translate_tensor(x, tile=tile, overlap=overlap)[0].cpu())
        single = image.dim() == 3
        out = self.translate_tensor(image.unsqueeze(0) if single else image, tile=tile, overlap=overlap)
        return out[0] if single else out

    @torch.no_grad()
    def cycle(
        self, x: torch.Tensor, tile: int | None = None, overlap: int | None = None, tile_batch: int = 4
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Translation and reconstruction F(G(x)) of a batch, on `x`'s device; needs `with_inverse=True`."""
        if self.inverse is None:
            raise ValueError("load the translator with with_inverse=True for the cycle view")
        fake = self._translate(x, None, tile, overlap, tile_batch)
        rec = self._translate(fake, self.inverse, tile, overlap, tile_batch)
        return fake.to(x.device), rec.to(x.device)

    def translate_files(
        self,
        inputs: Sequence[str | Path],
        output_dir: str | Path,
        batch_size: int | None = None,
        max_size: int | None = None,
        cycle_view: bool = False,
        progress: bool = True,
        tile: int | None = None,
        overlap: int | None = None,
        overwrite: bool = False,
        memory_budget: int | None = None,
        on_bad_image: str = "error",
        skipped: list[Path] | None = None,
        follow_load: LoadAwareThreads | None = None,
    ) -> list[Path]:
        """Translate image files/folders (and videos) into output_dir/<stem>.png (<stem>.mp4 ...),
        each at its input's size; returns the paths written, one per input.

        Images of the same size are batched together, batch_size at a time (None: 1 on a
        CPU, where larger batches measured slower per image, 8 on a GPU). With max_size, larger images are
        translated at that longest side (aspect kept) and scaled back. With tile, images
        larger than a tile are translated in tiles (see translate_tensor), each as soon as it
        is read. Without tile, an image whose whole-image pass would need more than
        `memory_budget` bytes (None: the memory available now) is tiled exactly with the
        largest tile that fits, and a message says so. Videos (VIDEO_EXTENSIONS) are
        translated frame by frame, batch_size frames per pass (cyclegan.video).
        With cycle_view, output_dir/cycle/<stem>.png shows input | translated | reconstructed.
        Output names are planned first (cyclegan.outputs.plan_outputs): unique, never an input,
        never an existing file unless `overwrite`; each file is written under a temporary name
        and renamed, so an interrupted run leaves only complete files.
        An unreadable input raises ImageLoadError naming it; with on_bad_image="skip" it is left
        out with a warning naming it (appended to `skipped` when given) and the others are written.
        With follow_load, the CPU thread count follows the machine's load between images (cpu_threads).
        """
        tile_overlap(tile, overlap)  # fail before any output is written
        if max_size is not None and max_size < MIN_TILE:
            raise ConfigError(f"--max-size must be at least {MIN_TILE} pixels, got {max_size}")
        if on_bad_image not in ("error", "skip"):
            raise ConfigError(f"on_bad_image must be error or skip, got {on_bad_image!r}")
        if batch_size is None:
            batch_size = 8 if self.device.type == "cuda" else 1
        paths = list_inputs(inputs)
        output_dir = Path(output_dir)
        videos = [p for p in paths if p.suffix.lower() in VIDEO_EXTENSIONS]
        images = [p for p in paths if p not in videos]
        suffixes = [p.suffix.lower() if p in videos else output_suffix(self.format_out, p) for p in paths]
        targets = plan_outputs(paths, output_dir, suffixes, overwrite, subfolders=["cycle"] if cycle_view else [])
        prepare_output_dir(output_dir)
        if cycle_view:
            prepare_output_dir(output_dir / "cycle")
        budget = memory_budget if memory_budget is not None else available_bytes()
        by_size: dict[tuple[int, int], list[tuple[Path, torch.Tensor, tuple[int, int]]]] = defaultdict(list)
        written = []
        bar = tqdm(total=len(images), disable=not progress or not images, unit="img")
        for path in images:
            if follow_load is not None and (change := follow_load.update()):
                bar.write(f"cyclegan: {change}", file=sys.stderr)
            try:
                img = read_image(path, self.format_in)  # a PIL image, or float planes beyond 8-bit RGB
            except ImageLoadError as err:
                if on_bad_image != "skip":
                    bar.close()  # first: the error must not land on the bar's line
                    raise
                bar.write(f"cyclegan: warning: skipping {str(err).replace(f' ({BAD_IMAGE_HINT})', '')}",
                          file=sys.stderr)
                if skipped is not None:
                    skipped.append(path)
                bar.update(1)
                continue
            original = img.size
            if max_size is not None and max(original) > max_size:
                scale = max_size / max(original)
                img = img.resize((max(1, round(original[0] * scale)), max(1, round(original[1] * scale))), Image.BICUBIC)
            image_tile = tile if tile is not None else self._budget_tile(path, img.size, budget, cycle_view)
            tiling = {"tile": image_tile, "overlap": overlap, "tile_batch": batch_size}
            if image_tile is not None and max(img.size) > image_tile:
                written += self._flush([(path, image_tensor(img, self.format_in), original)], targets, cycle_view,
                                       bar, tiling)
                continue
            group = by_size[img.size]
            group.append((path, image_tensor(img, self.format_in), original))
            if len(group) == batch_size:
                written += self._flush(group, targets, cycle_view, bar, tiling)
                group.clear()
        for group in by_size.values():
            if group:
                written += self._flush(group, targets, cycle_view, bar, {"tile": tile, "overlap": overlap,
                                                                           "tile_batch": batch_size})
        bar.close()
        if videos:
            from .video import translate_video  # PyAV is an optional extra

            for path in videos:
                written.append(translate_video(self, path, targets[path], batch_size=batch_size, progress=progress,
                                               tile=tile, overlap=overlap))
        return written

    def _budget_tile(self, path: Path, size: tuple[int, int], budget: int | None, cycle_view: bool) -> int | None:
        """None when the whole image fits in `budget`; else the largest exact tile that does (with a message)."""
        if budget is None or not self.tileable() or (cycle_view and not self.tileable(self.inverse)):
            return None
        w, h = size
        need = forward_bytes(self.generator, 1, h + (-h) % self.multiple, w + (-w) % self.multiple)
        if need + image_bytes(3, h, w) <= budget:
            return None
        reach = receptive_radius(self.generator)
        assert reach is not None
        tile = tile_for_budget(self.generator, budget - image_bytes(3, h, w), reach[0], reach[1])
        if tile is None:
            raise ConfigError(f"not enough memory to translate {path} even in {MIN_TILE} px tiles "
                              f"(budget {human(budget)}); free memory or raise --memory-budget")
        tqdm.write(f"{path}: {w}x{h} needs about {human(need)} whole, more than the "
                   f"{human(budget)} memory budget; translating it in exact {tile} px tiles "
                   "(--tile to choose the size, --memory-budget to change the budget)", file=sys.stderr)
        return tile

    def _flush(self, group, targets: dict[Path, Path], cycle_view: bool, bar, tiling: dict[str, Any]) -> list[Path]:
        batch = torch.stack([t for _, t, _ in group])
        try:
            if cycle_view:
                fake, rec = self.cycle(batch, **tiling)
                rec = rec.cpu()
            else:
                fake, rec = self.translate_tensor(batch, **tiling), None
        except CheckpointError as err:
            raise CheckpointError(f"{group[0][0]}: {err}") from None
        except (RuntimeError, MemoryError) as err:
            if not _out_of_memory(err):
                raise
            names = ", ".join(str(p) for p, _, _ in group[:3])
            h, w = batch.shape[-2:]
            raise ConfigError(f"out of memory translating {names} ({w}x{h}); pass --tile 512 (or smaller) "
                              "to translate in exact tiles, --max-size to shrink it, or a smaller --batch-size") from None
        # One readback per batch: per-image .cpu() calls would each wait for the GPU.
        fake = fake.cpu()
        written = []
        for i, (path, tensor, original) in enumerate(group):
            target = targets[path]
            with temporary_output(target) as tmp:
                encode_image(fake[i], original, self.format_out, tmp, suffix=target.suffix)
            written.append(target)
            if rec is not None:
                strip = [preview(tensor), preview(fake[i]), preview(rec[i])]
                cycle_target = target.parent / "cycle" / target.name
                write_image(_side_by_side(strip), cycle_target)
            bar.update(1)
        return written


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _out_of_memory(err: BaseException) -> bool:
    # CPU: "DefaultCPUAllocator: can't allocate memory"; CUDA: torch.OutOfMemoryError (a RuntimeError).
    text = str(err)
    return (isinstance(err, MemoryError) or isinstance(err, torch.OutOfMemoryError)
            or "can't allocate memory" in text or "out of memory" in text.lower())


def _side_by_side(images: list[Image.Image]) -> Image.Image:
    w, h = images[0].size
    canvas = Image.new("RGB", (w * len(images), h))
    for i, img in enumerate(images):
        canvas.paste(img.convert("RGB"), (i * w, 0))
    return canvas
