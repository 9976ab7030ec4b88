"""How `cyclegan ... --help` shows defaults, and the demo preset in `cyclegan train --help`."""

from __future__ import annotations

import argparse

from .config import TrainConfig, config_diff


class OneDefaultFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)", except where the help already states its default.

    Config options default to None on the command line (so a typed value can be told from
    an untyped one) and carry the real default in their help text; options whose None means
    something say what in their help. Appending "(default: None)" to those would show two.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _option_for(field: str, value: object) -> str:
    flag = "--" + field.split(".", 1)[1].replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def preset_options(preset: TrainConfig) -> str:
    """The options that turn the defaults into `preset`, as they would be typed."""
    return " ".join(_option_for(name, new) for name, _, new in config_diff(TrainConfig(), preset))


def demo_epilog(preset: TrainConfig) -> str:
    total = preset.total_epochs
    return (f"Without DATAROOT the demo preset trains the built-in horse2zebra subset: "
            f"{preset_options(preset)} ({preset.optim.n_epochs} + {preset.optim.n_epochs_decay} = {total} epochs). "
            "Options typed after it still win. The authors' option names (--dataroot, --n_epochs, --netG, "
            "--load_size, --continue_train, ...) are accepted too; docs/options.md maps each.")

