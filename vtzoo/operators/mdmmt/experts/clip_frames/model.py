"""The CLIP frame expert's network: OpenAI CLIP (the shared :class:`~vtzoo.backbones.clip.CLIPTowers`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vtzoo.backbones.clip import CLIPSizes, CLIPTowers
from vtzoo.errors import ConfigError
from vtzoo.modeling import PretrainedModel


@dataclass
class ClipFramesConfig:
    """The CLIP release's sizes (default ViT-B/32)."""

    clip: CLIPSizes = field(default_factory=CLIPSizes)


class ClipFramesModel(PretrainedModel):
    """CLIP towers (``towers.*``, transformers' ``CLIPModel`` names); frames -> projected image features."""

    family = "clip_frames"
    config_class = ClipFramesConfig

    def __init__(self, config: ClipFramesConfig):
        super().__init__(config)
        self.towers = CLIPTowers(config.clip)

    def apply_precision(self, precision: str) -> None:
        """The CLIP towers' policy: bf16 Linear / Conv weights, float32 outputs."""
        super().apply_precision(precision)
        self.towers.apply_precision(precision)

    def accelerate(self, runners) -> None:
        self.towers.accelerate(runners)

    def usable_size(self, crop: int) -> int:
        """The pixels of a ``crop`` the ViT reads: whole patches only (228 -> 224 for ViT-B/32)."""
        patch = self.config.clip.vision_patch_size
        usable = (crop // patch) * patch
        if usable != self.config.clip.image_resolution:
            raise ConfigError(
                f"CLIP expert: a {crop}px crop gives {usable}px of patches, the ViT expects {self.config.clip.image_resolution}"
            )
        return usable

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Preprocessed (T, 3, size, size) frames -> (T, D) projected, unnormalised image features.

        The stride-``patch`` conv never reads the pixels past the last whole patch: they are
        dropped up front."""
        usable = self.usable_size(frames.shape[-1])
        return self.towers.encode_image(frames[..., :usable, :usable])
