"""Which family a state dict belongs to, from the key names only one family uses.

Used when weights do not fit the model they were given to, so the error can say "this looks
like a DRL checkpoint" instead of listing a thousand missing keys. Each family lists the key
prefixes that mark its original release and its vtzoo format; a family is named only when every
prefix of one of its signatures is present. Keys several families share (CLIP towers under
``clip.``, a BERT) name nobody: the families that read them say so themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Family:
    label: str  # as people write it
    operator: str  # what to load it with
    signatures: tuple[tuple[str, ...], ...]  # each: key prefixes that must all be present
    models: tuple[str, ...] = ()  # the vtzoo model families that read it (``vtzoo_family``)


FAMILIES: tuple[Family, ...] = (
    # DRL's token-weight heads (wti) exist in no other family; its other keys are CLIP4Clip's
    Family("DRL", "drl", (("text_weight_fc.", "video_weight_fc."),), ("drl",)),
    Family("Frozen in Time", "frozen_in_time", (("video_model.temporal_embed", "text_model."),), ("frozen_in_time",)),
    Family("MoViNet", "movinet", (("blocks.b0_l0.", "conv7."),), ("movinet",)),
    Family("VideoCLIP", "videoclip", (("video_encoder.", "text_encoder."),), ("videoclip",)),
    Family("S3D", "s3d", (("mixed_5c.", "conv_2c."),), ("s3d",)),
    Family("COOT", "coot", (("net_video_local.", "net_text_global."),), ("coot",)),
    Family("MDMMT", "mdmmt", (("vid_bert.", "text_gu."),), ("mdmmt",)),
    Family("MMT", "mdmmt (card mdmmt/mmt-msrvtt-1ka)", (("vid_bert.", "text_GU."),), ("mdmmt",)),
    Family("VGGish", "vggish", (("features.0.", "embeddings.4."),), ("vggish",)),
    Family("irCSN-152", "ircsn152", (("stem.0.", "layer4."),), ("ircsn152",)),
    # CLIP4Clip's similarity heads sit beside its CLIP; so do DRL's without wti (checked above)
    Family("CLIP4Clip", "clip4clip", (("clip.", "transformerClip."), ("clip.", "lstm_visual."), ("clip.", "cross.")),
           ("clip4clip",)),
)


@dataclass(frozen=True)
class Recognised:
    family: Family
    evidence: str  # what gave it away, for the message

    def describe(self) -> str:
        return f"this looks like a {self.family.label} checkpoint ({self.evidence})"


def recognise(keys: Iterable[str], files: Sequence[str | Path] = ()) -> Recognised | None:
    """The family whose signature ``keys`` carry (a vtzoo file's own header first), or None."""
    for file in files:
        saved = safetensors_family(file)
        family = next((f for f in FAMILIES if saved in f.models), None)
        if family is not None:
            return Recognised(family, f"saved by vtzoo as a {saved!r} model")
    keys = list(keys)
    for family in FAMILIES:
        for signature in family.signatures:
            if all(any(key.startswith(prefix) for key in keys) for prefix in signature):
                return Recognised(family, "keys " + ", ".join(f"{p.rstrip('.')}*" for p in signature))
    return None


def safetensors_family(file: str | Path) -> str | None:
    """``vtzoo_family`` from a safetensors file's metadata (what save_pretrained writes), if any."""
    if Path(file).suffix != ".safetensors":
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            return (handle.metadata() or {}).get("vtzoo_family")
    except Exception:  # not readable as safetensors: nothing to tell
        return None
