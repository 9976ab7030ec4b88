"""The CycleGAN networks: generators, discriminators, their norms and initialisation."""

from .discriminators import (
    DISCRIMINATORS,
    NLayerDiscriminator,
    PixelDiscriminator,
    build_discriminator,
    patch_map_size,
    receptive_field,
)
from .generators import (
    GENERATORS,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipBlock,
    build_generator,
    size_multiple,
)
from .init import init_weights
from .norm import conv_bias, norm_layer

__all__ = [
    "DISCRIMINATORS", "GENERATORS", "NLayerDiscriminator", "PixelDiscriminator", "ResnetBlock", "ResnetGenerator",
    "UnetGenerator", "UnetSkipBlock", "build_discriminator", "build_generator", "conv_bias", "init_weights",
    "norm_layer", "patch_map_size", "receptive_field", "size_multiple",
]
