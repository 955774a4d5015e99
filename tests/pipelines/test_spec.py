"""Declarative specs: exact YAML round-trip and validation errors that name the step and field."""

from __future__ import annotations

import pytest
import yaml

from vtzoo.pipelines import Pipeline, PipelineSpec, SpecError
from vtzoo.pipelines.catalog import catalog_names, catalog_path


@pytest.mark.parametrize("name", catalog_names())
def test_catalog_specs_round_trip_exactly(name):
    text = catalog_path(name).read_text()
    pipe = Pipeline.from_yaml(catalog_path(name))
    assert yaml.safe_load(pipe.to_yaml()) == yaml.safe_load(text)
    assert Pipeline.from_yaml(pipe.to_yaml()).to_yaml() == pipe.to_yaml()


def test_builder_and_yaml_describe_the_same_pipeline():
    built = (
        Pipeline(inputs=["path"], name="demo")
        .map("path", "clip", "video.decode", num_frames=8, workers=2, on_error="skip")
        .map("clip", "vec", "clip4clip.embed_video", variant="vit-b32-zeroshot")
        .batch(8)
        .output("path", "vec")
    )
    loaded = Pipeline.from_yaml(built.to_yaml())
    assert loaded.spec.to_dict() == built.spec.to_dict()
    embed = loaded.spec.steps[1]
    assert (embed.op, embed.batch_size, embed.params) == ("clip4clip.embed_video", 8, {"variant": "vit-b32-zeroshot"})


SPEC = """
inputs: [path]
steps:
  - {kind: map, name: decode, op: video.decode, input: path, output: clip}
  - {kind: map, name: embed, op: clip4clip.embed_video, input: clip, output: vec}
outputs: [vec]
"""


def _broken(old: str, new: str) -> str:
    assert old in SPEC
    return SPEC.replace(old, new)


@pytest.mark.parametrize(
    "text, where, field, message",
    [
        (_broken("op: clip4clip.embed_video", "op: clip4clip.embed_vdeo"), "step 1 ('embed')", "op", "Did you mean: clip4clip.embed_video"),
        (_broken("op: clip4clip.embed_video", "op: nosuchmodel.embed_video"), "step 1 ('embed')", "op", "unknown op"),
        (_broken("input: clip, output: vec", "input: frames, output: vec"), "step 1 ('embed')", "input", "column 'frames' does not exist"),
        (_broken("input: path, output: clip", "input: vec, output: clip"), "step 0 ('decode')", "input", "cycle"),
        (_broken("output: vec}", "output: vec, batch_size: eight}"), "step 1 ('embed')", "batch_size", "integer"),
        (_broken("output: vec}", "output: vec, on_error: ignore}"), "step 1 ('embed')", "on_error", "raise, skip"),
        (_broken("kind: map, name: embed", "kind: reduce, name: embed"), "step 1 ('embed')", "kind", "map, flat_map, filter"),
        (_broken("output: vec}", "output: vec, colour: red}"), "step 1 ('embed')", "colour", "unknown field"),
        (_broken("outputs: [vec]", "outputs: [nothing]"), "outputs", "outputs", "never written"),
    ],
)
def test_invalid_specs_name_the_step_and_field(text, where, field, message):
    with pytest.raises(SpecError) as info:
        Pipeline.from_yaml(text)
    assert info.value.where == where and info.value.field == field
    assert message in str(info.value)


def test_spec_never_constructs_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    evil = SPEC + f"extra: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(SpecError, match="not valid YAML"):
        Pipeline.from_yaml(evil)
    assert not marker.exists()


def test_callables_are_builder_only():
    pipe = Pipeline(["x"]).map("x", "y", lambda x: x + 1).output("y")
    assert pipe(1) == {"y": 2}
    with pytest.raises(SpecError, match="Python callable"):
        pipe.to_yaml()


def test_missing_spec_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="missing.yaml"):
        PipelineSpec.from_yaml(tmp_path / "missing.yaml")


# -- one way to change a spec, validated before the run -------------------------------------------
def test_override_sets_params_and_step_fields_on_a_copy():
    spec = PipelineSpec.from_yaml(catalog_path("text_video_index"))
    changed = spec.override("embed", weights="random", batch_size=2).with_database("/tmp/x.db")
    assert changed.step("embed").params == {"variant": "vit-b32-zeroshot", "weights": "random"}
    assert changed.step("embed").batch_size == 2
    assert changed.step("upsert").params["db"] == "/tmp/x.db"
    assert spec.step("embed").params == {"variant": "vit-b32-zeroshot"} and spec.step("embed").batch_size == 8


def test_override_of_an_unknown_step_names_the_nearest():
    spec = PipelineSpec.from_yaml(catalog_path("text_video_index"))
    with pytest.raises(SpecError, match=r"step 'embd'.*Did you mean: embed"):
        spec.override("embd", weights="random")


@pytest.mark.parametrize(
    "step,field,suggestion",
    [("decode", "num_framez", "num_frames"), ("embed", "max_framez", "max_frames"), ("embed", "batch_sise", "batch_size")],
)
def test_a_misspelt_parameter_fails_at_load_naming_step_and_field(step, field, suggestion):
    spec = PipelineSpec.from_yaml(catalog_path("text_video_index")).override(step, **{field: 4})
    with pytest.raises(SpecError, match=rf"'{step}'.*params.{field}.*Did you mean: {suggestion}"):
        Pipeline.from_spec(spec)


def test_a_misspelt_search_parameter_fails_at_load():
    spec = PipelineSpec.from_yaml(catalog_path("text_video_query")).override("search", top_kk=3)
    with pytest.raises(SpecError, match=r"'search'.*params.top_kk.*Did you mean: top_k"):
        Pipeline.from_spec(spec)


@pytest.mark.parametrize("name", catalog_names())
def test_catalog_specs_name_their_model_once(name):
    from vtzoo.registry.operators import list_operators

    steps = yaml.safe_load(catalog_path(name).read_text())["steps"]
    text = yaml.safe_dump(steps)
    for operator in list_operators():
        mentions = text.count(f"{operator}.") + text.count(f"{operator}/") + text.count(f"operator: {operator}")
        assert mentions <= 1, f"{name} names {operator} {mentions} times"
