"""Weights from local folders and checkpoint files: strict loading, conversion, safe unpickling."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from vtzoo.registry.weights import WeightsError, build_model, read_state_dict


def _original_state_dict(model) -> dict[str, torch.Tensor]:
    """``model``'s weights as the tiny family's "original" release stores them (transposed)."""
    sd = model.state_dict()
    return {
        "enc.w": sd["encoder.weight"].t().contiguous(),
        "enc.b": sd["encoder.bias"],
        "dec.w": sd["head.weight"].t().contiguous(),
        "dec.b": sd["head.bias"],
    }


def test_save_pretrained_round_trip(tmp_path, tiny):
    model = tiny.tiny_model(0)
    model.config.scale = (1.0, 3.0)
    folder = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = tiny.TinyModel.from_pretrained(folder)
    assert tiny.same_weights(model, loaded)
    assert loaded.config == model.config  # the tuple field comes back a tuple, not a JSON list
    assert not loaded.training
    x = torch.randn(2, 3)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_overrides_apply_on_top_of_the_saved_config(tmp_path, tiny):
    folder = tiny.tiny_model(0).save_pretrained(tmp_path / "saved")
    with pytest.raises(WeightsError, match=r"encoder\.weight: checkpoint \(5, 3\) vs model \(7, 3\)"):
        tiny.TinyModel.from_pretrained(folder, hidden=7)
    with pytest.raises(WeightsError, match=r"unknown config field\(s\) \['hiden'\] for TinyConfig"):
        tiny.TinyModel.from_pretrained(folder, hiden=7)


def test_wrong_family_folder_names_both_families(tmp_path, tiny):
    folder = tiny.OtherModel(tiny.TinyConfig()).save_pretrained(tmp_path / "other")
    with pytest.raises(WeightsError, match=r"hold a 'other' model.*but a 'tiny' model was expected"):
        tiny.TinyModel.from_pretrained(folder)


def test_strict_loading_lists_missing_and_unexpected_keys(tmp_path, tiny):
    sd = tiny.tiny_model(0).state_dict()
    del sd["head.bias"]
    sd["head.extra"] = torch.zeros(2)
    path = tmp_path / "partial.safetensors"
    save_file(sd, str(path))
    with pytest.raises(WeightsError) as info:
        tiny.TinyModel.from_pretrained(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing keys (1):\n  head.bias" in message
    assert "unexpected keys (1):\n  head.extra" in message
    # Non-strict loading takes what fits and leaves the rest initialised.
    model = tiny.TinyModel.from_pretrained(path, strict=False)
    torch.testing.assert_close(model.encoder.weight, sd["encoder.weight"])


def test_original_safetensors_is_converted(tmp_path, tiny):
    reference = tiny.tiny_model(1)
    path = tmp_path / "release.safetensors"
    save_file(_original_state_dict(reference), str(path))
    model, resolved = build_model(tiny.TinyModel, None, path)
    assert resolved.format == "original"  # detected: the keys are not vtzoo's, the converter fits
    assert tiny.same_weights(model, reference)


def test_fp16_release_loads_as_float32(tmp_path, tiny):
    reference = tiny.tiny_model(2)
    path = tmp_path / "half.safetensors"
    save_file({k: v.half() for k, v in _original_state_dict(reference).items()}, str(path))
    model = tiny.TinyModel.from_pretrained(path)
    assert model.encoder.weight.dtype == torch.float32
    torch.testing.assert_close(model.encoder.weight, reference.encoder.weight.half().float(), rtol=0, atol=0)


def test_unconvertible_checkpoint_error_lists_each_attempt(tmp_path, tiny):
    path = tmp_path / "foreign.safetensors"
    save_file({"backbone.conv.weight": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError) as info:
        tiny.TinyModel.from_pretrained(path)
    message = str(info.value)
    assert "do not look like a tiny checkpoint (first keys: backbone.conv.weight)" in message
    assert "as 'original':" in message and "as vtzoo keys:" in message and "unexpected keys (1)" in message


def test_pth_plain_state_dict_loads_through_weights_only(tmp_path, tiny):
    reference = tiny.tiny_model(3)
    path = tmp_path / "release.pth"
    # A training checkpoint: the tensors sit under "state_dict", saved from DataParallel.
    wrapped = {"epoch": 7, "state_dict": {f"module.{k}": v for k, v in _original_state_dict(reference).items()}}
    torch.save(wrapped, path)
    model = tiny.TinyModel.from_pretrained(path)
    assert tiny.same_weights(model, reference)


class _Payload:
    """Unpickling this would run ``__reduce__``'s call: write a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pth_with_pickled_object_is_refused_and_never_run(tmp_path, tiny):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": tiny.tiny_model(0).state_dict(), "hook": _Payload(marker)}, path)
    with pytest.raises(WeightsError) as info:
        tiny.TinyModel.from_pretrained(path)
    message = str(info.value)
    assert str(path) in message and "weights_only=True" in message
    assert "pickled object(s) of class" in message and "open" in message  # names what it refused
    assert "weights_only=False" not in message  # never advise the unsafe way out
    assert not marker.exists()


class TrainingMeta:
    """An arbitrary class a training script pickled next to the weights."""

    def __init__(self):
        self.lr = 0.1


def test_pth_with_a_custom_class_instance_is_refused_naming_the_class(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2), "meta": TrainingMeta()}, path)
    with pytest.raises(WeightsError, match=r"pickled object\(s\) of class \S*TrainingMeta, which vtzoo will not unpickle"):
        read_state_dict(path)


def test_unknown_spec_suggests_cards(tmp_path, tiny, cards_dir):
    tiny.write_card(cards_dir, tiny.card_dict())
    with pytest.raises(WeightsError, match=r"not a weight card\. Did you mean the card tiny/v1\?"):
        tiny.TinyModel.from_pretrained("tiny/v0")
    with pytest.raises(WeightsError, match="no such file or directory"):
        tiny.TinyModel.from_pretrained(str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="unknown file type '.npz'"):
        read_state_dict(tmp_path.joinpath("w.npz").write_bytes(b"x") and tmp_path / "w.npz")


def test_card_without_published_weights_explains(tiny):
    from vtzoo.registry.cards import parse_card

    card = parse_card(tiny.card_dict(weights={"note": "never released by the authors"}), "c/tiny/v1.yaml")
    with pytest.raises(WeightsError, match=r"tiny/v1 has no published weights \(never released by the authors\)"):
        build_model(tiny.TinyModel, card, None)
    model, resolved = build_model(tiny.TinyModel, card, "random")
    assert resolved.kind == "random" and model.config.hidden == 5


def test_numbered_checkpoints_of_training_scripts_are_read(tmp_path):
    # CLIP4Clip and DRL save pytorch_model.bin.<epoch>
    path = tmp_path / "pytorch_model.bin.4"
    torch.save({"w": torch.arange(3.0)}, path)
    assert read_state_dict(path)["w"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(WeightsError, match="unknown file type '.txt'"):
        (tmp_path / "notes.txt").write_text("x")
        read_state_dict(tmp_path / "notes.txt")
