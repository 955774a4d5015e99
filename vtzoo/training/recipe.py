"""Training recipes: every hyper-parameter of a run in one YAML file, checked before any work.

A recipe names the operator (and variant / starting weights / model config), then sections:

```yaml
operator: clip4clip
name: msrvtt-9k
config: {sim_header: meanP}          # model config overrides (vtzoo.create(..., **config))
options: {}                          # operator options (tokenizer, ...)
data: {expand_captions: true, num_workers: 2}
train: {epochs: 5, batch_size: 32, global_batch: 128, seed: 42, grad_clip: 1.0}
optimizer: {name: bertadam, lr: 1.0e-4, betas: [0.9, 0.98], eps: 1.0e-6, weight_decay: 0.2,
            no_decay: [bias, LayerNorm.bias, LayerNorm.weight],
            groups: [{params: ["clip.*"], lr_scale: 0.001}]}
schedule: {name: warmup_cosine, warmup: 0.1}
family: {...}                        # the family's own settings (its training.py declares them)
sources: {optimizer.lr: "ArrowLuo/CLIP4Clip README.md, MSR-VTT 9k command", ...}
```
Unknown fields anywhere are an error naming the field, with a "did you mean". Recipes ship in
each family's folder (``vtzoo/operators/<family>/recipes/<name>.yaml``); every family has one
named ``synthetic-tiny``.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from vtzoo.errors import ConfigError, did_you_mean

DEFAULT_RECIPE = "synthetic-tiny"
OPTIMIZERS = ("adamw", "adam", "bertadam", "radam", "rmsprop", "sgd")
SCHEDULES = ("constant", "warmup_cosine", "warmup_linear", "cosine", "polynomial", "plateau", "step")


@dataclass
class DataSection:
    format: str | None = None  # dataset format (default: detected)
    unit: str = "video"  # "video": one item per video; "segment": one per annotated segment
    eval_unit: str | None = None  # the unit of val/test items (default: ``unit``)
    expand_captions: bool = False  # one sample per caption per epoch instead of one random caption per video
    num_workers: int = 2  # DataLoader worker processes that decode
    max_items: int | None = None  # use at most this many training items (a quick run)

    def __post_init__(self) -> None:
        for name, unit in (("unit", self.unit), ("eval_unit", self.eval_unit or self.unit)):
            if unit not in ("video", "segment"):
                raise ConfigError(f"data.{name} must be 'video' or 'segment', got {unit!r}")


@dataclass
class TrainSection:
    epochs: int = 1
    batch_size: int = 32  # items per forward pass
    global_batch: int | None = None  # items per optimizer step (gradient accumulation = global / batch)
    max_minutes: float | None = None  # stop (validate, test) once this much time went into the run
    max_steps: int | None = None  # the same, after this many optimizer steps
    seed: int = 0
    precision: str = "auto"
    grad_clip: float | None = None  # max gradient norm (None: no clipping)
    eval_every: int = 1  # epochs between validations
    early_stopping: int | None = None  # stop after this many validations without a better metric
    metric: str | None = None  # validation metric that picks the best checkpoint (default per task)
    checkpoint_every: int = 50  # optimizer steps between resumable checkpoints (also each epoch)


@dataclass
class ParamGroup:
    params: list[str]  # fnmatch patterns on parameter names ("clip.*")
    lr_scale: float = 1.0
    weight_decay: float | None = None
    freeze: bool = False


@dataclass
class OptimizerSection:
    name: str = "adamw"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0  # rmsprop / sgd
    alpha: float = 0.99  # rmsprop's decay (TF's rho)
    no_decay: list[str] = field(default_factory=list)  # name substrings without weight decay
    groups: list[ParamGroup] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer.name {self.name!r} is not one of {', '.join(OPTIMIZERS)}.{did_you_mean(self.name, OPTIMIZERS)}")
        self.betas = tuple(self.betas)


@dataclass
class ScheduleSection:
    name: str = "constant"
    warmup: float = 0.0  # fraction of the run's optimizer steps
    warmup_steps: int | None = None  # instead of the fraction
    power: float = 1.0  # polynomial decay
    end_lr: float = 0.0  # polynomial decay: final learning rate
    gamma: float = 0.95  # step: the learning rate times gamma every ``step_epochs`` epochs (StepLR)
    step_epochs: int = 1
    factor: float = 0.1  # plateau
    patience: int = 5
    cooldown: int = 0

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ConfigError(f"schedule.name {self.name!r} is not one of {', '.join(SCHEDULES)}.{did_you_mean(self.name, SCHEDULES)}")


@dataclass
class Recipe:
    operator: str
    name: str
    description: str = ""
    variant: str | None = None
    weights: str | None = "random"  # starting weights (a card, a folder, hf://...; "random" = from scratch)
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    family: dict[str, Any] = field(default_factory=dict)  # checked by the family's Settings
    sources: dict[str, str] = field(default_factory=dict)  # field -> where its value comes from
    path: str | None = None  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("path")
        return out


# -- building dataclasses from plain data -----------------------------------------------------
def from_mapping(cls: type, data: Any, where: str) -> Any:
    """``cls(**data)`` with nested dataclasses, naming an unknown field by its dotted path."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{where}: unknown field {key!r}.{did_you_mean(str(key), fields)} "
                              f"Fields: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [from_mapping(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is list and isinstance(value, str):
        return [value]
    kinds = [a for a in (args or (hint,)) if isinstance(a, type)]
    if value is not None and float in kinds and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads 1e-4 (no dot) as a string
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    return value


# -- finding and reading recipes --------------------------------------------------------------
def family_package(operator: str) -> str:
    """The package of an operator's family (where its training.py and recipes live)."""
    from vtzoo.registry.operators import get_operator_class, split_name

    cls = get_operator_class(split_name(operator, None)[0])
    return cls.__module__.rsplit(".", 1)[0]


def family_recipe_dir(operator: str) -> Path | None:

    package = family_package(operator)
    try:
        folder = resources.files(package) / "recipes"
    except ModuleNotFoundError:
        return None
    return Path(str(folder)) if folder.is_dir() else None


def list_recipes(operator: str) -> list[str]:
    folder = family_recipe_dir(operator)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder else []


def load_recipe(spec: str | Path | None, operator: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """A recipe by name (from the family's folder) or by file, with dotted ``overrides`` applied."""
    spec = DEFAULT_RECIPE if spec is None else spec
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        known = list_recipes(operator)
        if str(spec) not in known:
            raise ConfigError(f"no recipe {str(spec)!r} for {operator!r}.{did_you_mean(str(spec), known)} "
                              f"Recipes: {', '.join(known) or '(none)'}; or give a FILE.yaml")
        path = family_recipe_dir(operator) / f"{spec}.yaml"
    if not path.is_file():
        raise ConfigError(f"recipe file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path}: expected a mapping at the top level")
    data = copy.deepcopy(data)
    data.setdefault("name", path.stem)
    data.setdefault("operator", operator)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    recipe = from_mapping(Recipe, data, f"recipe {path}")
    recipe.path = str(path)
    if recipe.operator != operator:
        raise ConfigError(f"recipe {path} is for the operator {recipe.operator!r}, not {operator!r}")
    check_sources(recipe, str(path))
    return recipe


def resolve_resources(value: Any) -> Any:
    """``{package: NAME, path: REL}`` anywhere in ``value`` -> the path of that file of an installed
    package (a recipe cannot know where site-packages is; e.g. a vocabulary a package ships)."""
    if isinstance(value, dict) and set(value) == {"package", "path"}:
        try:
            target = Path(str(resources.files(value["package"]))) / value["path"]
        except ModuleNotFoundError:
            raise ConfigError(f"the recipe needs the package {value['package']!r} (for {value['path']}); "
                              "it is not installed") from None
        if not target.exists():
            raise ConfigError(f"package {value['package']!r} has no {value['path']}")
        return str(target)
    if isinstance(value, dict):
        return {k: resolve_resources(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_resources(v) for v in value]
    return value


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(d, "train.epochs", 3)``: sections are created as needed."""
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {key!r} is not a section")
    node[last] = value


def check_sources(recipe: Recipe, where: str) -> None:
    """Every ``sources`` key names a field the recipe has (a typo would hide a hyper-parameter)."""
    flat = set(_dotted_keys(recipe.to_dict()))
    for key in recipe.sources:
        if key not in flat and not any(f.startswith(key + ".") for f in flat):
            raise ConfigError(f"recipe {where}: sources names {key!r}, which is not a field of the recipe."
                              f"{did_you_mean(key, flat)}")


def _dotted_keys(data: Any, prefix: str = "") -> list[str]:
    if not isinstance(data, dict):
        return []
    keys = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        keys.append(name)
        keys += _dotted_keys(value, name + ".")
    return keys
