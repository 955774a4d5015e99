"""Weight cards: validation errors name the file and the field; lookup and licences."""

from __future__ import annotations

import warnings

import pytest

from vtzoo.registry.cards import (
    CardError,
    NonCommercialWeightsWarning,
    all_cards,
    get_card,
    list_cards,
    load_card,
    parse_card,
)
from vtzoo.registry.operators import UnknownOperator
from vtzoo.registry.weights import build_model

HUB = {"repo": "org/tiny", "revision": "a" * 40, "files": ["model.safetensors"]}


def _error(data: dict, path: str = "cards/tiny/v1.yaml") -> CardError:
    with pytest.raises(CardError) as info:
        parse_card(data, path)
    assert "cards/tiny/v1.yaml" in str(info.value)
    return info.value


def test_valid_card_parses(tiny):
    card = parse_card(tiny.card_dict(weights={"format": "vtzoo", "hub": HUB}), "x/tiny/v1.yaml")
    assert card.name == "tiny/v1"
    assert card.hub.revision == "a" * 40 and card.hub.files == ("model.safetensors",)
    assert card.metrics["paper"][0]["protocol"]["frames"] == 12
    assert not card.non_commercial


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c["license"].pop("weights"), "license.weights"),
        (lambda c: c["license"].pop("code"), "license.code"),
        (lambda c: c.pop("license"), "license"),
        (lambda c: c["source"].pop("url"), "source.url"),
        (lambda c: c["source"].update(commit="not-a-sha"), "source.commit"),
        (lambda c: c.pop("preprocessing"), "preprocessing"),
        (lambda c: c["metrics"]["paper"][0].pop("protocol"), "metrics.paper[0].protocol"),
        (lambda c: c["metrics"]["paper"][0]["protocol"].pop("frames"), "metrics.paper[0].protocol.frames"),
        (lambda c: c["metrics"]["paper"][0].update(value="44.5%"), "metrics.paper[0].value"),
        (lambda c: c["metrics"]["paper"][0].update(value=True), "metrics.paper[0].value"),
        (lambda c: c["metrics"]["paper"][0].pop("split"), "metrics.paper[0].split"),
        (lambda c: c.update(weights={"format": "vtzoo", "hub": {**HUB, "revision": "main"}}), "weights.hub.revision"),
        (lambda c: c.update(weights={"hub": HUB}), "weights.format"),
        (lambda c: c.update(weights={"format": "vtzoo", "hub": {**HUB, "sha256": {"model.safetensors": "abc"}}}),
         "weights.hub.sha256.model.safetensors"),
        (lambda c: c.update(weights={"format": "vtzoo", "hub": {**HUB, "sha256": {"other.bin": "0" * 64}}}),
         "weights.hub.sha256.other.bin"),
        (lambda c: c.update(weights={"format": "vtzoo", "hub": {**HUB, "repo": "tiny"}}), "weights.hub.repo"),
        (lambda c: c["preprocessing"].update(tokenizer={"repo": "org/tok", "revision": "v1"}),
         "preprocessing.tokenizer.revision"),
        (lambda c: c.update(licence={"code": "MIT"}), "licence"),
        (lambda c: c["license"].update(non_commercial="yes"), "license.non_commercial"),
    ],
)
def test_bad_field_is_named(tiny, change, field):
    data = tiny.card_dict()
    change(data)
    error = _error(data)
    assert error.field == field
    assert f"field '{field}'" in str(error)


def test_unknown_field_suggests_the_known_one(tiny):
    data = tiny.card_dict()
    data["preprocesing"] = data.pop("preprocessing")
    error = _error(data)
    assert error.field == "preprocesing" and "did you mean 'preprocessing'" in str(error)


def test_load_card_names_file_for_yaml_and_placement_errors(tmp_path, tiny, cards_dir):
    broken = tmp_path / "broken.yaml"
    broken.write_text("operator: [unclosed\n")
    with pytest.raises(CardError, match=r"broken\.yaml.*not valid YAML"):
        load_card(broken)
    with pytest.raises(CardError, match="does not exist"):
        load_card(tmp_path / "missing.yaml")
    twice = tmp_path / "twice.yaml"
    twice.write_text("operator: tiny\nvariant: v1\nlicense: {code: MIT, weights: MIT}\nvariant: v2\n")
    with pytest.raises(CardError, match=r"twice\.yaml: field 'variant': is written twice \(second time on line 4\)"):
        load_card(twice)
    # A packaged card whose content disagrees with its place (a copy nobody edited).
    misplaced = tiny.write_card(cards_dir, tiny.card_dict(variant="v2"))
    misplaced.rename(misplaced.with_name("v3.yaml"))
    with pytest.raises(CardError, match=r"v3\.yaml.*'tiny/v2' but lives at tiny/v3\.yaml"):
        get_card("tiny/v3")


def test_list_and_get_cards_with_suggestions(tiny, cards_dir):
    for variant in ("v1", "v2"):
        tiny.write_card(cards_dir, tiny.card_dict(variant=variant))
    tiny.write_card(cards_dir, tiny.card_dict(operator="other", variant="base"))
    assert list_cards() == ["other/base", "tiny/v1", "tiny/v2"]
    assert list_cards("tiny") == ["tiny/v1", "tiny/v2"]
    assert get_card("tiny/v2").variant == "v2"
    assert [c.name for c in all_cards("tiny")] == ["tiny/v1", "tiny/v2"]
    with pytest.raises(UnknownOperator) as info:
        get_card("tiny/v3")
    assert "Did you mean" in str(info.value) and "tiny/v1" in str(info.value)


def test_packaged_cards_all_validate():
    # Every card shipped in the wheel must load (this is what `vtzoo cards` reads).
    cards = all_cards()
    assert cards and [card.name for card in cards] == list_cards()


def test_non_commercial_warning_only_for_the_cards_own_weights(tmp_path, tiny, cards_dir):
    data = tiny.card_dict(license={"code": "MIT", "weights": "CC-BY-NC-4.0"})
    card = load_card(tiny.write_card(cards_dir, data))
    assert card.non_commercial
    flagged = tiny.card_dict(license={"code": "MIT", "weights": "Apache-2.0", "non_commercial": True})
    assert parse_card(flagged, "x").non_commercial
    folder = tiny.tiny_model(0).save_pretrained(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonCommercialWeightsWarning)
        build_model(tiny.TinyModel, card, "random")  # untrained: nothing licensed is loaded
        build_model(tiny.TinyModel, card, folder)  # the user's own weights, not the card's
    with pytest.warns(NonCommercialWeightsWarning, match=r"tiny/v1.*CC-BY-NC-4\.0"):
        card.warn_if_non_commercial()  # (loading the card's Hub weights warns: see test_hub.py)
