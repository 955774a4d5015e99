"""CLIP text and vision towers (ViT variants) built from transformers' CLIP modules.

Several families (CLIP4Clip, DRL, MDMMT's CLIP frame expert) start from OpenAI's CLIP. This
module gives them one implementation with the OpenAI computation and two ways in:

* :class:`CLIPSizes` — the OpenAI-style sizes (``embed_dim``, ``vision_width``, ...), readable
  from an OpenAI state dict's shapes exactly as OpenAI's ``build_model`` does, and turned into a
  transformers :class:`~transformers.CLIPConfig`.
* :class:`CLIPTowers` — ``text_model`` / ``vision_model`` (transformers ``CLIPTextModel`` /
  ``CLIPVisionModel``) + ``text_projection`` / ``visual_projection`` + ``logit_scale``: the same
  parameter names as transformers' ``CLIPModel``, so a transformers checkpoint loads unchanged.
  Optionally a 3D patch embedding (``linear_patch="3d"``, CLIP4Clip's temporal variant).
* :func:`convert_openai_clip_state_dict` (OpenAI keys ``visual.*``, ``transformer.*``,
  ``token_embedding.weight``, ...; fused attention ``in_proj`` split into q/k/v) and
  :func:`convert_transformers_clip_state_dict` (a transformers ``CLIPModel`` state dict).

What the towers compute (the OpenAI computation):

* ``encode_text(input_ids)`` -> :class:`TextFeatures`: ``tokens`` = every token after the final
  LayerNorm, projected (N, L, D); ``pooled`` = the token at ``argmax(input_ids)`` (the EOT token
  has the largest id in CLIP's vocabulary). The text transformer is causal; padding after EOT
  never influences the EOT vector, so no attention mask is used (as in OpenAI's code).
* ``encode_image(pixels)`` -> (N, D): ``post_layernorm`` on the class token, projected.
* ``encode_frames(video)`` -> (B, T, D): one class-token vector per frame; with the 3D patch
  embedding the frames of each video are convolved together first.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import asdict, dataclass
from typing import Mapping

import torch
from torch import nn
from transformers import CLIPConfig
from transformers.models.clip.modeling_clip import CLIPTextModel, CLIPVisionModel

__all__ = [
    "CLIPSizes",
    "CLIPTowers",
    "TextFeatures",
    "OPENAI_RELEASES",
    "VIT_B_16",
    "VIT_B_32",
    "VIT_L_14",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "convert_openai_clip_state_dict",
    "convert_transformers_clip_state_dict",
    "convert_openai_resblock",
    "is_openai_clip_state_dict",
    "sizes_from_transformers_state_dict",
    "tiny_sizes",
]

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Scalars the OpenAI TorchScript archives carry next to the weights; they are not parameters.
_OPENAI_SCALARS = ("input_resolution", "context_length", "vocab_size")
_LOGIT_SCALE_INIT = math.log(1 / 0.07)


@dataclass
class CLIPSizes:
    """OpenAI-style sizes of a ViT CLIP. Defaults: ViT-B/32.

    Attention heads are ``width // 64`` on both towers in OpenAI's code: ``vision_heads`` /
    ``transformer_heads`` left out (None) follow that rule, and are stated after construction.
    """

    embed_dim: int = 512
    image_resolution: int = 224
    vision_layers: int = 12
    vision_width: int = 768
    vision_patch_size: int = 32
    vision_heads: int | None = None
    context_length: int = 77
    vocab_size: int = 49408
    transformer_width: int = 512
    transformer_heads: int | None = None
    transformer_layers: int = 12

    def __post_init__(self) -> None:
        for tower, width_field in (("vision", "vision_width"), ("transformer", "transformer_width")):
            heads_field, width = f"{tower}_heads", getattr(self, width_field)
            if getattr(self, heads_field) is None:
                setattr(self, heads_field, width // 64)
            heads = getattr(self, heads_field)
            if heads < 1 or width % heads:
                raise ValueError(f"CLIP {heads_field}={heads} must be a positive divisor of {width_field}={width}")
        if self.image_resolution % self.vision_patch_size:
            raise ValueError(
                f"CLIP image_resolution={self.image_resolution} is not a multiple of vision_patch_size={self.vision_patch_size}"
            )

    @classmethod
    def of_release(cls, name: str) -> "CLIPSizes":
        """The sizes of an OpenAI CLIP release by its name in OpenAI's ``clip.load`` (``"ViT-B/32"``)."""
        if name not in OPENAI_RELEASES:
            raise ValueError(f"unknown OpenAI CLIP release {name!r}; known: {', '.join(OPENAI_RELEASES)}")
        return dataclasses.replace(OPENAI_RELEASES[name])

    @classmethod
    def from_openai_state_dict(cls, state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> "CLIPSizes":
        """Read the sizes from an OpenAI CLIP state dict's shapes (as OpenAI's ``build_model``)."""
        sd = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if "visual.proj" not in sd:
            raise ValueError(f"not an OpenAI ViT CLIP state dict: no '{prefix}visual.proj' (ResNet CLIPs are not supported)")
        vision_width = sd["visual.conv1.weight"].shape[0]
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        width = sd["ln_final.weight"].shape[0]
        return cls(
            embed_dim=sd["text_projection"].shape[1],
            image_resolution=patch * grid,
            vision_layers=len([k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")]),
            vision_width=vision_width,
            vision_patch_size=patch,
            vision_heads=vision_width // 64,
            context_length=sd["positional_embedding"].shape[0],
            vocab_size=sd["token_embedding.weight"].shape[0],
            transformer_width=width,
            transformer_heads=width // 64,
            transformer_layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks")}),
        )

    def transformers_config(self) -> CLIPConfig:
        """The equivalent transformers ``CLIPConfig`` (QuickGELU, LayerNorm eps 1e-5, MLP 4x)."""
        text = dict(
            vocab_size=self.vocab_size,
            hidden_size=self.transformer_width,
            intermediate_size=4 * self.transformer_width,
            num_hidden_layers=self.transformer_layers,
            num_attention_heads=self.transformer_heads,
            max_position_embeddings=self.context_length,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            projection_dim=self.embed_dim,
            # eos id 2 = "pool at argmax(ids)" in transformers, which is OpenAI's rule
            bos_token_id=self.vocab_size - 2,
            eos_token_id=2,
            pad_token_id=1,
        )
        vision = dict(
            hidden_size=self.vision_width,
            intermediate_size=4 * self.vision_width,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads,
            image_size=self.image_resolution,
            patch_size=self.vision_patch_size,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            projection_dim=self.embed_dim,
        )
        config = CLIPConfig(
            text_config=text, vision_config=vision, projection_dim=self.embed_dim, logit_scale_init_value=_LOGIT_SCALE_INIT
        )
        for sub in (config, config.text_config, config.vision_config):
            sub._attn_implementation = "sdpa"
        return config

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


VIT_B_32 = CLIPSizes()
VIT_B_16 = CLIPSizes(vision_patch_size=16)
VIT_L_14 = CLIPSizes(embed_dim=768, vision_layers=24, vision_width=1024, vision_patch_size=14, transformer_width=768)
# the ViT releases of OpenAI's clip.load, by name (the originals' --pretrained_clip_name / --base_encoder)
OPENAI_RELEASES = {"ViT-B/32": VIT_B_32, "ViT-B/16": VIT_B_16, "ViT-L/14": VIT_L_14}


@dataclass
class TextFeatures:
    """Output of :meth:`CLIPTowers.encode_text`."""

    pooled: torch.Tensor  # (N, D) projected EOT vector
    tokens: torch.Tensor  # (N, L, D) every token after ln_final, projected
    eot_index: torch.Tensor  # (N,) position of the pooled token


class PatchEmbedding3d(nn.Conv3d):
    """CLIP4Clip's ``linear_patch='3d'``: kernel (3, p, p), stride (1, p, p), temporal padding 1.

    Applied over the frames of each video, so zero (padded) frames leak into their real
    neighbours — the original's behaviour, kept on purpose.
    """

    def __init__(self, width: int, patch: int):
        super().__init__(3, width, kernel_size=(3, patch, patch), stride=(1, patch, patch), padding=(1, 0, 0), bias=False)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B*T, width, grid, grid)."""
        b, t = video.shape[:2]
        out = super().forward(video.permute(0, 2, 1, 3, 4))  # (B, width, T, g, g)
        return out.permute(0, 2, 1, 3, 4).reshape(b * t, *out.shape[1:2], *out.shape[3:])

    @staticmethod
    def inflate(conv2d_weight: torch.Tensor) -> torch.Tensor:
        """The original's initialisation: the 2D kernel in the middle temporal tap, zeros around."""
        zeros = torch.zeros_like(conv2d_weight)
        return torch.stack([zeros, conv2d_weight, zeros], dim=2)


class ImageEncoder(nn.Module):
    """What :meth:`CLIPTowers.encode_image` computes, as one module a runtime can convert.

    Not registered under the towers (its parameters are theirs): runtimes get it by
    :meth:`CLIPTowers.image_encoder`.
    """

    def __init__(self, vision_model: CLIPVisionModel, visual_projection: nn.Linear):
        super().__init__()
        self.vision_model, self.visual_projection = vision_model, visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return encode_embedded(self.vision_model, self.visual_projection, self.vision_model.embeddings(pixel_values))


def encode_embedded(vision_model: CLIPVisionModel, projection: nn.Linear, tokens: torch.Tensor) -> torch.Tensor:
    """Pre-norm, the ViT encoder, post-norm on the class token, projection: (N, L, W) -> (N, D)."""
    hidden = vision_model.encoder(inputs_embeds=vision_model.pre_layrnorm(tokens)).last_hidden_state
    return projection(vision_model.post_layernorm(hidden[:, 0]))


class CLIPTowers(nn.Module):
    """CLIP text + vision towers with OpenAI's computation on transformers modules.

    Parameter names are those of transformers' ``CLIPModel`` (``text_model.*``, ``vision_model.*``,
    ``text_projection.weight``, ``visual_projection.weight``, ``logit_scale``), plus
    ``patch_embedding_3d.weight`` when ``linear_patch == "3d"``.
    """

    def __init__(self, sizes: CLIPSizes, linear_patch: str = "2d"):
        super().__init__()
        if linear_patch not in ("2d", "3d"):
            raise ValueError(f"linear_patch must be '2d' or '3d', got {linear_patch!r}")
        self.sizes = sizes
        self.linear_patch = linear_patch
        config = sizes.transformers_config()
        self.text_model = CLIPTextModel(config.text_config)
        self.vision_model = CLIPVisionModel(config.vision_config)
        self.text_projection = nn.Linear(sizes.transformer_width, sizes.embed_dim, bias=False)
        self.visual_projection = nn.Linear(sizes.vision_width, sizes.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(_LOGIT_SCALE_INIT))
        if linear_patch == "3d":
            self.patch_embedding_3d = PatchEmbedding3d(sizes.vision_width, sizes.vision_patch_size)
        self.precision = "fp32"
        self._image_runner = None  # set by accelerate(): OpenVINO / compiled encode_image

    # -- precision and runtimes ---------------------------------------------------------------
    def apply_precision(self, precision: str) -> None:
        """bf16: every Linear / Conv of both towers holds bf16 weights (measured: 4x over fp32
        on ViT-B/32 frames, min cosine 0.99999, docs/operators/clip4clip.md); LayerNorms,
        embeddings and ``logit_scale`` stay float32. Outputs are float32 in every precision."""
        from vtzoo.precision import DTYPES, cast_matmul_weights

        self.precision = precision
        if precision != "fp32":
            cast_matmul_weights(self.text_model, DTYPES[precision])
            cast_matmul_weights(self.vision_model, DTYPES[precision])
            cast_matmul_weights(self.text_projection, DTYPES[precision])
            cast_matmul_weights(self.visual_projection, DTYPES[precision])

    def _mixed_precision(self):
        from vtzoo.precision import autocast

        return autocast(self.precision, self.logit_scale.device)

    def image_encoder(self) -> ImageEncoder:
        return ImageEncoder(self.vision_model, self.visual_projection)

    def accelerate(self, runners, name: str = "clip-image") -> None:
        """Run ``encode_image`` (2D patches) through ``runners`` (see :mod:`vtzoo.runtime`)."""
        size = self.sizes.image_resolution
        example = torch.zeros(2, 3, size, size)
        # not a submodule: its parameters are the towers' own (a compiled module would register)
        object.__setattr__(self, "_image_runner", runners(name, self.image_encoder(), (example,)))

    # -- text ---------------------------------------------------------------------------------
    def encode_text(self, input_ids: torch.Tensor) -> TextFeatures:
        """``input_ids`` (N, L) with L <= context_length, 0-padded after EOT."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (N, L), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.sizes.context_length:
            raise ValueError(f"input_ids have {input_ids.shape[1]} tokens; CLIP's context is {self.sizes.context_length}")
        # No attention mask: causal attention alone, as OpenAI (tokens after EOT never reach it).
        with self._mixed_precision():
            hidden = self.text_model(input_ids=input_ids).last_hidden_state  # ln_final applied
            tokens = self.text_projection(hidden).float()
        eot = input_ids.argmax(dim=-1)
        pooled = tokens[torch.arange(tokens.shape[0], device=tokens.device), eot]
        return TextFeatures(pooled=pooled, tokens=tokens, eot_index=eot)

    # -- vision -------------------------------------------------------------------------------
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) -> projected class-token vectors (N, D). 2D patches only."""
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be (N, 3, H, W), got shape {tuple(pixel_values.shape)}")
        if self._image_runner is not None:
            return self._image_runner(pixel_values).float()
        with self._mixed_precision():
            return self.image_encoder()(pixel_values).float()

    def encode_frames(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Videos (B, T, 3, H, W) -> one projected class-token vector per frame (B, T, D).

        With the frame ``mask`` (B, T), padded frames that are all alike (the zero frames of a
        short video) are encoded once, not once each: the output is the same as encoding every
        frame (a 1-frame video padded to 12 costs 2 frames, not 12).
        """
        if video.dim() != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W), got shape {tuple(video.shape)}")
        b, t = video.shape[:2]
        if self.linear_patch == "2d":
            flat = video.reshape(b * t, *video.shape[2:])
            if mask is not None:
                return self._encode_skipping_padding(flat, mask.reshape(-1).bool()).reshape(b, t, -1)
            return self.encode_image(flat).reshape(b, t, -1)
        embeddings = self.vision_model.embeddings
        with self._mixed_precision():
            patches = self.patch_embedding_3d.embed(video)
            patches = patches.flatten(2).transpose(1, 2)  # (B*T, grid*grid, width)
            cls = embeddings.class_embedding.expand(patches.shape[0], 1, -1)
            tokens = torch.cat([cls, patches.to(cls.dtype)], dim=1) + embeddings.position_embedding.weight
            return encode_embedded(self.vision_model, self.visual_projection, tokens).float().reshape(b, t, -1)


    def _encode_skipping_padding(self, frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``encode_image`` of (N, 3, H, W) frames where the padded ones (``~valid``) share one result."""
        padded = frames[~valid]
        if len(padded) < 2 or not bool((padded == padded[:1]).all()):
            return self.encode_image(frames)
        encoded = self.encode_image(torch.cat([frames[valid], padded[:1]]))
        out = encoded[-1:].expand(len(frames), -1).clone()
        out[valid] = encoded[:-1]
        return out


# -- converters ---------------------------------------------------------------------------------
def is_openai_clip_state_dict(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> bool:
    return f"{prefix}visual.proj" in state_dict and f"{prefix}token_embedding.weight" in state_dict


def convert_openai_resblock(
    state_dict: Mapping[str, torch.Tensor], src: str, dst: str
) -> dict[str, torch.Tensor]:
    """One OpenAI ``ResidualAttentionBlock`` (``src`` prefix, e.g. ``transformer.resblocks.0.``)
    -> one transformers ``CLIPEncoderLayer`` (``dst`` prefix, e.g. ``encoder.layers.0.``).

    ``attn.in_proj_weight``/``in_proj_bias`` hold q, k, v stacked in that order.
    """
    out: dict[str, torch.Tensor] = {}
    for kind in ("weight", "bias"):
        q, k, v = state_dict[f"{src}attn.in_proj_{kind}"].chunk(3, dim=0)
        out[f"{dst}self_attn.q_proj.{kind}"] = q
        out[f"{dst}self_attn.k_proj.{kind}"] = k
        out[f"{dst}self_attn.v_proj.{kind}"] = v
        out[f"{dst}self_attn.out_proj.{kind}"] = state_dict[f"{src}attn.out_proj.{kind}"]
        out[f"{dst}layer_norm1.{kind}"] = state_dict[f"{src}ln_1.{kind}"]
        out[f"{dst}layer_norm2.{kind}"] = state_dict[f"{src}ln_2.{kind}"]
        out[f"{dst}mlp.fc1.{kind}"] = state_dict[f"{src}mlp.c_fc.{kind}"]
        out[f"{dst}mlp.fc2.{kind}"] = state_dict[f"{src}mlp.c_proj.{kind}"]
    return out


_RESBLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.")


def convert_openai_clip_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "", strict: bool = True
) -> dict[str, torch.Tensor]:
    """OpenAI CLIP keys (under ``prefix``) -> :class:`CLIPTowers` keys (float32).

    ``strict``: raise on keys under ``prefix`` that are not part of a ViT CLIP (the archive's int
    scalars ``input_resolution``/``context_length``/``vocab_size`` are always dropped).
    """
    sd = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not is_openai_clip_state_dict(sd):
        raise ValueError(f"not an OpenAI ViT CLIP state dict under prefix {prefix!r} (no visual.proj / token_embedding)")
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set(k for k in sd if k in _OPENAI_SCALARS)
    blocks = sorted({(m.group(1) or "", int(m.group(2))) for k in sd if (m := _RESBLOCK.match(k))})
    for tower, index in blocks:
        src = f"{tower}transformer.resblocks.{index}."
        dst = f"{'vision_model' if tower else 'text_model'}.encoder.layers.{index}."
        out.update(convert_openai_resblock(sd, src, dst))
        used.update(k for k in sd if k.startswith(src))
    simple = {
        "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text_model.embeddings.position_embedding.weight",
        "ln_final.weight": "text_model.final_layer_norm.weight",
        "ln_final.bias": "text_model.final_layer_norm.bias",
        "logit_scale": "logit_scale",
        "visual.class_embedding": "vision_model.embeddings.class_embedding",
        "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
        "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
        "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
        "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
        "visual.ln_post.weight": "vision_model.post_layernorm.weight",
        "visual.ln_post.bias": "vision_model.post_layernorm.bias",
        "visual.conv2.weight": "patch_embedding_3d.weight",
    }
    for src, dst in simple.items():
        if src in sd:
            out[dst] = sd[src]
            used.add(src)
    # OpenAI stores projections as (in, out) matrices used as x @ P; nn.Linear wants (out, in).
    out["text_projection.weight"] = sd["text_projection"].T.contiguous()
    out["visual_projection.weight"] = sd["visual.proj"].T.contiguous()
    used.update({"text_projection", "visual.proj"})
    leftover = sorted(set(sd) - used)
    if strict and leftover:
        raise ValueError(f"unexpected OpenAI CLIP keys: {[prefix + k for k in leftover]}")
    return out


def convert_transformers_clip_state_dict(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """A transformers ``CLIPModel`` state dict -> :class:`CLIPTowers` keys (same names).

    Drops the non-persistent ``position_ids`` buffers that old checkpoints still carry.
    """
    keep = ("text_model.", "vision_model.", "text_projection.", "visual_projection.", "logit_scale")
    out = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name.endswith("position_ids") or not name.startswith(keep):
            continue
        out[name] = value.float() if value.is_floating_point() else value
    if "text_projection.weight" not in out or "visual_projection.weight" not in out:
        raise ValueError("not a transformers CLIPModel state dict (no text_projection / visual_projection)")
    return out


def sizes_from_transformers_state_dict(state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> CLIPSizes:
    """Read :class:`CLIPSizes` from a transformers ``CLIPModel`` state dict's shapes."""
    sd = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    vision_width, _, patch, _ = sd["vision_model.embeddings.patch_embedding.weight"].shape
    grid = round((sd["vision_model.embeddings.position_embedding.weight"].shape[0] - 1) ** 0.5)
    width = sd["text_model.final_layer_norm.weight"].shape[0]
    count = lambda tower: len({k.split(".")[3] for k in sd if k.startswith(f"{tower}.encoder.layers.")})  # noqa: E731
    return CLIPSizes(
        embed_dim=sd["text_projection.weight"].shape[0],
        image_resolution=patch * grid,
        vision_layers=count("vision_model"),
        vision_width=vision_width,
        vision_patch_size=patch,
        vision_heads=vision_width // 64,
        context_length=sd["text_model.embeddings.position_embedding.weight"].shape[0],
        vocab_size=sd["text_model.embeddings.token_embedding.weight"].shape[0],
        transformer_width=width,
        transformer_heads=width // 64,
        transformer_layers=count("text_model"),
    )


def tiny_sizes(like: CLIPSizes) -> CLIPSizes:
    """A one-layer, 64-wide CLIP with ``like``'s patch size and CLIP's real vocabulary (so the real
    tokenizer feeds it): the same code paths as the full model, in milliseconds."""
    patch = like.vision_patch_size
    return CLIPSizes(
        embed_dim=64, image_resolution=2 * patch, vision_layers=1, vision_width=64, vision_patch_size=patch,
        vision_heads=1, context_length=16, vocab_size=like.vocab_size, transformer_width=64, transformer_heads=1,
        transformer_layers=1,
    )
