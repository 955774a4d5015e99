"""``PretrainedModel``: the base class of every vtzoo network.

A network is a ``torch.nn.Module`` built from one config dataclass. What a family knows about
its original checkpoints lives beside it, in ``<family package>/convert.py``, found by
convention so the model module never imports its converters (and they never import it):

* ``CONVERTERS``: checkpoint format name (as cards write it in ``weights.format``) ->
  ``(state_dict, config) -> vtzoo state dict``; a converter may return a :class:`PartialStateDict`
  when the original fills the rest at random before fine-tuning (see ``init_like_original``);
* ``read_checkpoint(path) -> state dict`` (optional): for releases that are not one flat state
  dict (several networks in one file, nested dicts).

``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` mirror huggingface_hub's
``PyTorchModelHubMixin`` with vtzoo's folder format (``config.json`` carrying ``vtzoo_family`` +
``model.safetensors``), loaded through the one strict, converting path of
:func:`vtzoo.registry.weights.build_model`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Callable

import torch

from vtzoo.registry.weights import CONFIG_NAME, WEIGHTS_NAME, PartialStateDict, StateDict, build_model  # noqa: F401

Converter = Callable[[StateDict, Any], StateDict]


class PretrainedModel(torch.nn.Module):
    """Base class of every vtzoo network: a config dataclass, converters, Hub round-trips.

    Subclasses set ``family`` (the registry family name) and ``config_class`` (a dataclass), and
    take the config as their only constructor argument.
    """

    family: str = ""
    config_class: type = object

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    # -- what the family's convert.py provides --------------------------------------------------
    @classmethod
    def _convert_module(cls):
        package = cls.__module__.rsplit(".", 1)[0]
        try:
            return importlib.import_module(f"{package}.convert")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.convert":
                raise
            return None

    @classmethod
    def converters(cls) -> dict[str, Converter]:
        """Checkpoint format -> converter, from the family's ``convert.CONVERTERS``."""
        module = cls._convert_module()
        return dict(getattr(module, "CONVERTERS", {})) if module is not None else {}

    @classmethod
    def checkpoint_reader(cls) -> Callable[[Path], StateDict] | None:
        """The family's ``convert.read_checkpoint``, for releases that are not a flat state dict."""
        module = cls._convert_module()
        return getattr(module, "read_checkpoint", None) if module is not None else None

    def init_like_original(self, loaded: StateDict) -> None:
        """Initialise what a :class:`PartialStateDict` left out, as the original does before
        fine-tuning. Runs under the seeded RNG of the operator's ``seed``. Default: nothing."""

    # -- precision ------------------------------------------------------------------------------
    # the precision the weights were prepared for (see apply_precision)
    precision: str = "fp32"

    def apply_precision(self, precision: str) -> None:
        """Prepare the weights for ``precision`` ("fp32" | "bf16" | "fp16"), once, at build.

        The default keeps float32 weights and lets the operator's autocast do the work; a family
        that measured a gain from low-precision weights overrides this (calling it first) and
        casts the modules where that is accurate. Its encoders enter :meth:`mixed_precision`
        themselves, so a model prepared for bf16 also runs outside an operator.
        """
        self.precision = precision

    def mixed_precision(self):
        """The autocast context of :attr:`precision` on the model's device (a no-op in fp32)."""
        from vtzoo.precision import autocast

        parameter = next(self.parameters(), None)
        return autocast(self.precision, parameter.device if parameter is not None else torch.device("cpu"))

    # -- folders and the Hub --------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (vtzoo format) to ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"vtzoo_family": self.family, **dataclasses.asdict(self.config)}
        (directory / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True))
        # clone: safetensors refuses tensors that share storage (tied weights)
        tensors = {k: v.detach().float().cpu().clone().contiguous() if v.is_floating_point() else v.detach().cpu().clone().contiguous()
                   for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "vtzoo_family": self.family})
        return directory

    @classmethod
    def from_pretrained(cls, weights: Any, strict: bool = True, seed: int = 0, **overrides: Any) -> "PretrainedModel":
        """Load from a card name, ``hf://org/repo[@rev]``, a saved folder, or an original checkpoint file."""
        model, _ = build_model(cls, None, weights, overrides, strict=strict, seed=seed)
        return model.eval()

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        commit_message: str = "Upload vtzoo model",
        private: bool | None = None,
        token: str | None = None,
    ) -> str:
        """Upload ``config.json`` + ``model.safetensors`` to a Hub repo; returns the commit sha.

        Pin the returned sha in a card (``weights.hub.revision``) or load ``hf://repo_id@<sha>``.
        """
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)
        return info.oid
