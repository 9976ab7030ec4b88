"""An exported generator of ours: NAME.safetensors with NAME.json beside it, self-describing.

    cyclegan export checkpoints/h2z --format safetensors --output h2z_AtoB.safetensors
    cyclegan translate h2z_AtoB.safetensors photo.jpg --output-dir out

The JSON says how to build the network (generator, ngf, norm, channels, dropout) and
which way it maps, so the pair needs no run directory and no config.json.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .atomic import write_text_atomic
from .config import ConfigError, ModelConfig
from .nets import GENERATORS, build_generator, size_multiple
from .rundir import CheckpointError, load_weights, save_weights

FORMAT = "cyclegan-generator"
VERSION = 1


@dataclass(frozen=True)
class ExportedGenerator:
    generator: str
    ngf: int
    norm: str
    input_nc: int
    output_nc: int
    dropout: bool
    direction: str  # which way the generator maps, in the run's terms

    def model_config(self) -> ModelConfig:
        # Channels as the file maps them: "input" is what this generator takes.
        return ModelConfig(generator=self.generator, ngf=self.ngf, norm=self.norm, input_nc=self.input_nc,
                           output_nc=self.output_nc, dropout=self.dropout)


def sidecar(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def is_exported(weights: Path) -> bool:
    return Path(weights).suffix == ".safetensors" and sidecar(weights).is_file()


def write_exported(net: nn.Module, cfg: ModelConfig, direction: str, output: Path) -> Path:
    """Write `net` (built from `cfg` for `direction`) as OUTPUT (.safetensors) + OUTPUT.json."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ConfigError(f"--output {output}: a safetensors export is named NAME.safetensors")
    in_nc, out_nc = (cfg.input_nc, cfg.output_nc) if direction == "AtoB" else (cfg.output_nc, cfg.input_nc)
    info = ExportedGenerator(cfg.generator, cfg.ngf, cfg.norm, in_nc, out_nc, cfg.dropout, direction)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    save_weights(net, tmp)
    tmp.replace(output)
    meta = {"format": FORMAT, "version": VERSION, **dataclasses.asdict(info),
            "size_multiple": size_multiple(cfg.generator),
            "input_range": "[-1, 1] (pixel / 127.5 - 1), NCHW float32"}
    write_text_atomic(sidecar(output), json.dumps(meta, indent=2) + "\n")
    return output


def load_exported(weights: Path) -> tuple[nn.Module, ExportedGenerator]:
    """(network in eval mode, its description) for an exported generator."""
    weights = Path(weights)
    meta_path = sidecar(weights)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read {meta_path}: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} does not describe an exported cyclegan generator (format {FORMAT})")
    fields = {f.name for f in dataclasses.fields(ExportedGenerator)}
    missing = sorted(fields - set(meta))
    if missing:
        raise CheckpointError(f"{meta_path} lacks {', '.join(missing)}")
    info = ExportedGenerator(**{k: meta[k] for k in fields})
    if info.generator not in GENERATORS:
        raise CheckpointError(f"{meta_path}: unknown generator {info.generator!r}")
    cfg = info.model_config()
    net = build_generator(cfg, info.input_nc, info.output_nc)
    load_weights(net, weights)
    return net.eval(), info
