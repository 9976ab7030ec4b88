"""Sample grids in the layout of the paper's Figure 4: input, translation,
reconstruction and identity mapping, one row per image and direction."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw

from ..models import CycleGANNets

COLUMNS_A = ("real A", "G(A)", "F(G(A))", "F(A)")
COLUMNS_B = ("real B", "F(B)", "G(F(B))", "G(B)")


def _to_uint8(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, 3, H, W) uint8, grayscale repeated to RGB."""
    t = t.detach().float().cpu().clamp(-1, 1)
    if t.shape[1] != 3:  # grayscale, or the first channel of an N-channel image
        t = t[:, :1].expand(-1, 3, -1, -1)
    return ((t + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def cycle_rows(nets: CycleGANNets, real_a: torch.Tensor, real_b: torch.Tensor) -> list[list[torch.Tensor]]:
    """Rows of (N, 3, H, W) uint8 images: first the A rows, then the B rows."""
    was_training = nets.gen_ab.training
    nets.gen_ab.eval()
    nets.gen_ba.eval()
    fake_b, fake_a = nets.gen_ab(real_a), nets.gen_ba(real_b)
    a_cols = [real_a, fake_b, nets.gen_ba(fake_b)]
    b_cols = [real_b, fake_a, nets.gen_ab(fake_a)]
    if real_a.shape[1] == real_b.shape[1]:
        a_cols.append(nets.gen_ba(real_a))
        b_cols.append(nets.gen_ab(real_b))
    nets.gen_ab.train(was_training)
    nets.gen_ba.train(was_training)
    return [[_to_uint8(c) for c in a_cols], [_to_uint8(c) for c in b_cols]]


def render_grid(groups: list[list[torch.Tensor]], headers: list[tuple[str, ...]], pad: int = 2) -> Image.Image:
    """Tile groups of columns (each column a batch of equally sized images) under text headers."""
    header_h = 14
    width = max(len(g) * (g[0].shape[3] + pad) for g in groups) + pad
    height = pad + sum(header_h + g[0].shape[0] * (g[0].shape[2] + pad) for g in groups)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = pad
    for group, names in zip(groups, headers):
        n, _, h, w = group[0].shape
        for c, name in enumerate(names[: len(group)]):
            draw.text((pad + c * (w + pad) + 2, y), name, fill=(0, 0, 0))
        y += header_h
        for i in range(n):
            for c, column in enumerate(group):
                tile = Image.fromarray(column[i].permute(1, 2, 0).numpy())
                canvas.paste(tile, (pad + c * (w + pad), y))
            y += h + pad
    return canvas


def sample_batch(images: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    """The fixed sample images as one batch, or as a list of (1, C, H, W) when their sizes differ
    (non-cropping --preprocess): each is then translated at its own size and padded in the grid."""
    if len({tuple(t.shape) for t in images}) == 1:
        return torch.stack(images)
    return [t.unsqueeze(0) for t in images]


def _pad_rows(per_image: list[list[list[torch.Tensor]]]) -> list[list[torch.Tensor]]:
    """Rows of single images of several sizes -> the same rows as batches, padded white to the largest."""
    h = max(col.shape[2] for rows in per_image for group in rows for col in group)
    w = max(col.shape[3] for rows in per_image for group in rows for col in group)

    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, w - t.shape[3], 0, h - t.shape[2]), value=255)

    return [[torch.cat([pad(rows[g][c]) for rows in per_image]) for c in range(len(per_image[0][g]))]
            for g in range(len(per_image[0]))]


def render_sample_grid(nets: CycleGANNets, real_a: torch.Tensor | list[torch.Tensor],
                       real_b: torch.Tensor | list[torch.Tensor]) -> Image.Image:
    """The grid of the paper's Figure 4 for these images (lists: images of several sizes, padded);
    written by `RunDir.save_sample`."""
    if isinstance(real_a, list):
        rows = _pad_rows([cycle_rows(nets, a, b) for a, b in zip(real_a, real_b)])
    else:
        rows = cycle_rows(nets, real_a, real_b)
    return render_grid(rows, [COLUMNS_A, COLUMNS_B])
