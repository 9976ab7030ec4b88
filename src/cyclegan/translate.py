"""Inference: a trained generator applied to images of any size, from a run directory.

    translator = Translator.from_run("checkpoints/h2z", direction="AtoB")
    zebra = translator(Image.open("horse.jpg"))          # PIL in, PIL out
    batch_out = translator(batch_in)                      # (N, C, H, W) in [-1, 1] in, same out
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Literal, Sequence, overload

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from .config import ModelConfig, TrainConfig
from .data.images import list_inputs, load_image, to_pil, to_tensor
from .models import build_translation_generator
from .nets import size_multiple
from .training.checkpoint import CheckpointError, latest_checkpoint, load_weights
from .training.loop import pick_device

Direction = Literal["AtoB", "BtoA"]


def _channels(cfg: ModelConfig, direction: Direction) -> tuple[int, int]:
    return (cfg.input_nc, cfg.output_nc) if direction == "AtoB" else (cfg.output_nc, cfg.input_nc)


def _load_generator(cfg: TrainConfig, weights: Path, direction: Direction, device: torch.device) -> nn.Module:
    net = build_translation_generator(cfg.model, direction, cfg.data.crop_size)
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


class Translator:
    """A generator ready to translate, with its inverse when the cycle view is wanted."""

    def __init__(
        self,
        generator: nn.Module,
        multiple: int,
        in_channels: int,
        device: torch.device,
        inverse: nn.Module | None = None,
    ):
        self.generator = generator
        self.inverse = inverse
        self.multiple = multiple
        self.in_channels = in_channels
        self.device = device

    @classmethod
    def from_run(
        cls, run_dir: str | Path, direction: Direction = "AtoB", device: str = "auto", with_inverse: bool = False
    ) -> "Translator":
        """Load the latest checkpoint of a run directory made by `cyclegan train`."""
        run_dir = Path(run_dir)
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise CheckpointError(f"{run_dir} is not a run directory (no config.json); pass the folder that `cyclegan train` wrote")
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise CheckpointError(f"{run_dir} has no complete checkpoint yet; train it first (cyclegan train ... --name {run_dir.name})")
        cfg = TrainConfig.load(config_path)
        forward, backward = ("gen_ab", "gen_ba") if direction == "AtoB" else ("gen_ba", "gen_ab")
        return cls._build(cfg, direction, checkpoint / f"{forward}.safetensors",
                          checkpoint / f"{backward}.safetensors" if with_inverse else None, device)

    @classmethod
    def from_weights(
        cls, weights: str | Path, config: str | Path, direction: Direction = "AtoB", device: str = "auto"
    ) -> "Translator":
        """Load one generator's safetensors file, built as described by a run's config.json.

        `direction` says which way that generator maps (AtoB for gen_ab, BtoA for gen_ba).
        """
        cfg = TrainConfig.load(Path(config))
        return cls._build(cfg, direction, Path(weights), None, device)

    @classmethod
    def _build(cls, cfg: TrainConfig, direction: Direction, weights: Path, inverse: Path | None, device: str):
        dev = pick_device(device)
        in_nc, _ = _channels(cfg.model, direction)
        if not weights.is_file():
            raise CheckpointError(f"weights file {weights} not found")
        gen = _load_generator(cfg, weights, direction, dev)
        backward: Direction = "BtoA" if direction == "AtoB" else "AtoB"
        inv = _load_generator(cfg, inverse, backward, dev) if inverse is not None else None
        # CoGAN's inversion resizes any input itself; convolutional generators need padding.
        multiple = 1 if cfg.model.method == "cogan" else size_multiple(cfg.model.generator)
        return cls(gen, multiple, in_nc, dev, inv)

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> translated (N, C', H, W), any H and W."""
        net = net or self.generator
        padded, (h, w) = pad_to_multiple(x.to(self.device), self.multiple)
        return net(padded)[..., :h, :w]

    @overload
    def __call__(self, image: Image.Image) -> Image.Image: ...
    @overload
    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, image):
        if isinstance(image, Image.Image):
            mode = "RGB" if self.in_channels == 3 else "L"
            x = to_tensor(image.convert(mode)).unsqueeze(0)
            return to_pil(self.translate_tensor(x)[0].cpu())
        single = image.dim() == 3
        out = self.translate_tensor(image.unsqueeze(0) if single else image)
        return out[0] if single else out

    @torch.no_grad()
    def cycle(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Translation and reconstruction F(G(x)) of a batch; needs `with_inverse=True`."""
        if self.inverse is None:
            raise ValueError("load the translator with with_inverse=True for the cycle view")
        fake = self.translate_tensor(x)
        return fake, self.translate_tensor(fake, self.inverse)

    def translate_files(
        self,
        inputs: Sequence[str | Path],
        output_dir: str | Path,
        batch_size: int = 4,
        max_size: int | None = None,
        cycle_view: bool = False,
        progress: bool = True,
    ) -> list[Path]:
        """Translate image files/folders into output_dir/<stem>.png, each at its input's size.

        Images of the same size are batched together. With max_size, larger images are
        translated at that longest side (aspect kept) and scaled back. With cycle_view,
        output_dir/cycle/<stem>.png shows input | translated | reconstructed.
        """
        paths = list_inputs(inputs)
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        if cycle_view:
            (output_dir / "cycle").mkdir(exist_ok=True)
        targets = _unique_names(paths)
        by_size: dict[tuple[int, int], list[tuple[Path, torch.Tensor, tuple[int, int]]]] = defaultdict(list)
        written = []
        bar = tqdm(total=len(paths), disable=not progress, unit="img")
        for path in paths:
            img = load_image(path, self.in_channels)
            original = img.size
            if max_size is not None and max(original) > max_size:
                scale = max_size / max(original)
                img = img.resize((max(1, round(original[0] * scale)), max(1, round(original[1] * scale))), Image.BICUBIC)
            group = by_size[img.size]
            group.append((path, to_tensor(img), original))
            if len(group) == batch_size:
                written += self._flush(group, targets, output_dir, cycle_view, bar)
                group.clear()
        for group in by_size.values():
            if group:
                written += self._flush(group, targets, output_dir, cycle_view, bar)
        bar.close()
        return written

    def _flush(self, group, targets: dict[Path, str], output_dir: Path, cycle_view: bool, bar) -> list[Path]:
        batch = torch.stack([t for _, t, _ in group])
        if cycle_view:
            fake, rec = self.cycle(batch)
        else:
            fake, rec = self.translate_tensor(batch), None
        written = []
        for i, (path, tensor, original) in enumerate(group):
            out = to_pil(fake[i].cpu())
            if out.size != original:
                out = out.resize(original, Image.BICUBIC)
            target = output_dir / f"{targets[path]}.png"
            out.save(target)
            written.append(target)
            if rec is not None:
                strip = [to_pil(tensor), to_pil(fake[i].cpu()), to_pil(rec[i].cpu())]
                _side_by_side(strip).save(output_dir / "cycle" / f"{targets[path]}.png")
            bar.update(1)
        return written


def _side_by_side(images: list[Image.Image]) -> Image.Image:
    w, h = images[0].size
    canvas = Image.new("RGB", (w * len(images), h))
    for i, img in enumerate(images):
        canvas.paste(img.convert("RGB"), (i * w, 0))
    return canvas


def _unique_names(paths: list[Path]) -> dict[Path, str]:
    """Output stems, made unique when two inputs share a name (from different folders)."""
    seen: dict[str, int] = {}
    names = {}
    for path in paths:
        stem = path.stem
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        names[path] = stem if count == 0 else f"{stem}_{count}"
    return names
