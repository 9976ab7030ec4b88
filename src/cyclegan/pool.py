"""History of generated images (Shrivastava et al.), one per discriminator.

The discriminator is updated on images drawn from the last `size` generated
ones rather than only the newest, which damps oscillation (paper, section 4).
Same rule as the authors' code: while the pool is filling, a new image is both
stored and returned; once full, with probability 1/2 a random stored image is
returned and replaced by the new one, else the new one is returned.
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        # Own generator: the pool's draws neither disturb nor depend on the global RNG,
        # and its state is saved with the checkpoint for an exact resume.
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Take a batch of new fakes (N, C, H, W); return a batch of the same shape for D."""
        if self.size == 0:
            return images
        out = []
        # Kept in at least float32: under --amp the fakes arrive in bfloat16, and a pool saved
        # in bfloat16 would break a resume without --amp (the discriminator's float32 weights
        # refuse bfloat16 input). Autocast casts them back down for the discriminator.
        for image in _at_least_float32(images.detach()):
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        if len({tuple(img.shape) for img in self.images}) > 1:  # images of several sizes (batch 1, no crop)
            stored: torch.Tensor | list[torch.Tensor] = [img[0].cpu() for img in self.images]
        else:
            stored = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if state["size"] != self.size:
            raise ValueError(f"image pool of size {state['size']} cannot be loaded into one of size {self.size}")
        stored = state["images"]
        stored = [_at_least_float32(img) for img in stored] if isinstance(stored, list) else _at_least_float32(stored)
        self.images = [img.unsqueeze(0).to(device) for img in stored] if len(stored) else []
        self.generator.set_state(state["generator"])


def _at_least_float32(images: torch.Tensor) -> torch.Tensor:
    return images.float() if images.dtype in (torch.bfloat16, torch.float16) else images
