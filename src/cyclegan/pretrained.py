"""The authors' released CycleGAN generators by name, and any MODEL opened as a Translator.

    cyclegan pretrained list
    cyclegan pretrained download horse2zebra
    cyclegan translate horse2zebra photos/horse.jpg --output-dir out

A zoo model is fetched on first use from CYCLEGAN_ZOO_URL (default: the authors'
server) into CYCLEGAN_HOME/pretrained (default ~/.cache/cyclegan/pretrained), and
verified by loading it before it is renamed into place.

`open_model` accepts: one of our run directories; a zoo name; a generator file in the
authors' format (.pth state_dict, architecture inferred); an exported generator of ours
(.safetensors with NAME.json beside it); an authors' run directory.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from .authors import load_generator
from .config import ConfigError, ModelConfig
from .download import download
from .exported import is_exported, load_exported
from .nets import size_multiple
from .device import resolve_device
from .rundir import CheckpointError, RunDir

ZOO_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"


@dataclass(frozen=True)
class ZooModel:
    name: str
    translates: str
    trap: str = ""


_STYLE = "photos -> paintings in the style of {}"
ZOO: dict[str, ZooModel] = {m.name: m for m in [
    ZooModel("apple2orange", "apples -> oranges (ImageNet photos)"),
    ZooModel("orange2apple", "oranges -> apples"),
    ZooModel("summer2winter_yosemite", "summer -> winter, Yosemite landscapes (Flickr)"),
    ZooModel("winter2summer_yosemite", "winter -> summer, Yosemite landscapes"),
    ZooModel("horse2zebra", "horses -> zebras (ImageNet photos)", "trained on horses and zebras only; people and "
              "backgrounds get striped too"),
    ZooModel("zebra2horse", "zebras -> horses"),
    ZooModel("monet2photo", "Monet paintings -> photos", "paintings -> photos: a photo given to it comes out "
              "nearly unchanged; for photo -> Monet use style_monet"),
    ZooModel("style_monet", _STYLE.format("Monet"), "photos in: a painting comes out nearly unchanged"),
    ZooModel("style_cezanne", _STYLE.format("Cezanne"), "photos in: a painting comes out nearly unchanged"),
    ZooModel("style_ukiyoe", _STYLE.format("Ukiyo-e"), "photos in: a painting comes out nearly unchanged"),
    ZooModel("style_vangogh", _STYLE.format("Van Gogh"), "photos in: a painting comes out nearly unchanged"),
    ZooModel("sat2map", "satellite photos -> Google maps", "trained on New York at one zoom level"),
    ZooModel("map2sat", "Google maps -> satellite photos", "trained on New York at one zoom level"),
    ZooModel("cityscapes_photo2label", "street photos -> Cityscapes label colours", "colours, not class ids"),
    ZooModel("cityscapes_label2photo", "Cityscapes label colours -> street photos", "needs the Cityscapes palette"),
    ZooModel("facades_photo2label", "facade photos -> CMP facade label colours", "colours, not class ids"),
    ZooModel("facades_label2photo", "CMP facade label colours -> facade photos", "needs the CMP facade palette"),
    ZooModel("iphone2dslr_flower", "iPhone flower photos -> DSLR shallow depth of field", "flowers only"),
]}


def cyclegan_home() -> Path:
    """CYCLEGAN_HOME, or ~/.cache/cyclegan (XDG_CACHE_HOME honoured)."""
    if os.environ.get("CYCLEGAN_HOME"):
        return Path(os.environ["CYCLEGAN_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cyclegan"


def zoo_url(name: str) -> str:
    return f"{os.environ.get('CYCLEGAN_ZOO_URL', ZOO_URL).rstrip('/')}/{name}.pth"


def zoo_path(name: str) -> Path:
    return cyclegan_home() / "pretrained" / f"{name}.pth"


def _check_name(name: str) -> ZooModel:
    if name not in ZOO:
        raise ConfigError(f"unknown pretrained model {name!r}; `cyclegan pretrained list` shows the {len(ZOO)} names")
    return ZOO[name]


def fetch(name: str, progress: bool = True) -> Path:
    """The cached file of zoo model `name`, downloaded (and verified by loading) when missing."""
    _check_name(name)
    path = zoo_path(name)
    if path.is_file():
        return path
    return download(zoo_url(name), path, progress=progress, verify=lambda p: load_generator(p))


# ---------------------------------------------------------------- any MODEL -> Translator


def open_model(model: str | Path, direction: str = "AtoB", device: str = "auto", with_inverse: bool = False,
               amp: bool = False, config: str | Path | None = None, options: ModelConfig | None = None,
               progress: bool = True):
    """A Translator for MODEL (see the module docstring for the forms). `options` fills what a
    .pth cannot say (dropout); `config` describes a bare .safetensors of a run, as before."""
    from .translate import Translator

    path = Path(model)
    if path.is_dir() and str(model) in ZOO and not RunDir(path).config_file.is_file() and not _authors_sets(path):
        # e.g. a dataset folder of the same name in the current directory: the name means the zoo model
        print(f"note: ./{model} is a folder but not a run; using the pretrained model {model}")
    elif path.is_dir():
        if RunDir(path).config_file.is_file():
            return Translator.from_run(path, direction, device, with_inverse=with_inverse, amp=amp)
        from .import_run import choose_epoch, find_weights

        sets = find_weights(path)
        if sets:  # a run directory of the authors' code: use it as it is
            label, _ = choose_epoch(sets, path, None)
            forward, backward = ("G_A", "G_B") if direction == "AtoB" else ("G_B", "G_A")
            inverse = sets[label][backward] if with_inverse else None
            return _from_pth(sets[label][forward], device, amp, options, inverse)
        raise CheckpointError(f"{path} is neither a run directory of ours (config.json) nor one of the authors' "
                              "code (*_net_G_A.pth); pass the folder `cyclegan train` wrote")
    elif path.is_file():
        if with_inverse:
            raise ConfigError("--cycle needs both generators: pass a run directory instead of a weights file")
        if path.suffix == ".pth":
            return _from_pth(path, device, amp, options)  # one generator: the direction is only a label
        if is_exported(path):
            net, info = load_exported(path)
            return _translator(net, info.model_config(), device, amp)
        if config is None:
            raise ConfigError(f"{path} has no {path.with_suffix('.json').name} beside it; pass --config "
                              "RUN_DIR/config.json, or export it with `cyclegan export --format safetensors`")
        return Translator.from_weights(path, config, direction, device, amp=amp)
    if str(model) in ZOO:
        if direction != "AtoB":
            raise ConfigError(f"zoo model {model} holds one generator (AtoB); for the other way take its "
                              "counterpart from `cyclegan pretrained list`")
        if with_inverse:
            raise ConfigError(f"--cycle needs both generators; zoo model {model} holds one")
        return _from_pth(fetch(str(model), progress), device, amp, options)
    raise FileNotFoundError(f"{model} does not exist and is not a pretrained model name; pass a run directory, "
                            "a .pth/.safetensors generator, or a name from `cyclegan pretrained list`")


def _authors_sets(path: Path) -> dict:
    from .import_run import find_weights

    return find_weights(path)


def _from_pth(path: Path, device: str, amp: bool, options: ModelConfig | None, inverse: Path | None = None):
    net, cfg, notes = load_generator(path, options)
    for note in notes[1:]:
        print(f"note: {note}")
    inv = load_generator(inverse, options)[0] if inverse is not None else None
    return _translator(net, cfg, device, amp, inv)


def _translator(net, cfg: ModelConfig, device: str, amp: bool, inverse=None):
    from .translate import Translator

    dev = resolve_device(device)
    inv = inverse.to(dev).eval() if inverse is not None else None
    # cfg describes this one generator (read from its file), so its input is cfg.input_nc whichever way it maps.
    return Translator(net.to(dev).eval(), size_multiple(cfg.generator), cfg.input_nc, dev, inv, amp)


# ---------------------------------------------------------------- command line


def cmd_list(args: argparse.Namespace) -> int:
    width = max(map(len, ZOO))
    for m in ZOO.values():
        cached = "cached" if zoo_path(m.name).is_file() else "-"
        trap = f"  [{m.trap}]" if m.trap else ""
        print(f"{m.name:<{width}}  {cached:<6}  {m.translates}{trap}")
    print(f"cache: {zoo_path('NAME').parent}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    _check_name(args.name)
    already = zoo_path(args.name).is_file()
    path = fetch(args.name, args.progress)
    net, cfg, notes = load_generator(path)
    print(f"{'already cached' if already else 'downloaded'}: {path} ({'; '.join(notes)})")
    return 0

