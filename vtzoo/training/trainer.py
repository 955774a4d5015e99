"""The training loop every family shares (``vtzoo train`` / ``vtzoo.train``).

One optimizer step consumes ``global_batch`` items in ``global_batch / batch_size`` forward passes.
For a contrastive family the loss must compare every pair of the global batch (as the originals'
multi-GPU runs do, gathering embeddings from every GPU), so the trainer caches embeddings: it
encodes each micro-batch without gradients, computes the loss on all of them and its gradient
with respect to the embeddings, then re-encodes each micro-batch (same RNG state) and
back-propagates those gradients. Classifiers accumulate plain gradients.

Each epoch ends with a validation; the best model by the recipe's metric is kept in the output
folder (``config.json`` + ``model.safetensors``), a resumable checkpoint is written every
``checkpoint_every`` steps and after every epoch, and the run ends with the test split's metrics.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from vtzoo.errors import ConfigError, VtzooError
from vtzoo.training import state as st
from vtzoo.training.data import Failed, SampleDataset, epoch_order, make_loader, training_samples
from vtzoo.training.evaluate import evaluate
from vtzoo.training.family import CLASSIFICATION, RETRIEVAL, get_family
from vtzoo.training.optim import build_optimizer, build_scheduler, parameter_groups
from vtzoo.training.recipe import Recipe, load_recipe, resolve_resources

DEFAULT_METRIC = {RETRIEVAL: "t2v_r1", CLASSIFICATION: "top1"}
RUN_FILES = ("config.json", "model.safetensors", "metrics.jsonl", "steps.jsonl", "labels.json",
             "recipe.json", "training.png", st.STATE_FILE)


class TrainingError(VtzooError):
    """Training cannot go on (a non-finite loss, nothing left to train on)."""


@dataclass
class TrainArgs:
    """What ``vtzoo train`` takes; ``None`` keeps the recipe's value."""

    op: str
    dataset: str | Path
    out: str | Path
    variant: str | None = None
    recipe: str | Path | None = None
    weights: str | None = None
    epochs: int | None = None
    max_minutes: float | None = None
    batch_size: int | None = None
    global_batch: int | None = None
    precision: str | None = None
    seed: int | None = None
    resume: bool = False
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted recipe fields
    progress: bool = True

    def recipe_overrides(self) -> dict[str, Any]:
        flags = {"train.epochs": self.epochs, "train.max_minutes": self.max_minutes, "train.batch_size": self.batch_size,
                 "train.global_batch": self.global_batch, "train.precision": self.precision, "train.seed": self.seed,
                 "variant": self.variant, "weights": self.weights}
        return {**self.overrides, **{k: v for k, v in flags.items() if v is not None}}


def log(message: str) -> None:
    print(f"vtzoo train: {message}", file=sys.stderr, flush=True)


class Trainer:
    def __init__(self, args: TrainArgs):
        from vtzoo.datasets import load_dataset

        self.args, self.out = args, Path(args.out)
        self.recipe: Recipe = load_recipe(args.recipe, args.op.split("/", 1)[0], args.recipe_overrides())
        self._batch_sizes(args)
        self.family = get_family(self.recipe.operator)
        self.base_settings = self.family.settings(self.recipe.family, f"recipe {self.recipe.path}")
        self.family = self.family.for_settings(self.base_settings)
        self.dataset = load_dataset(args.dataset, self.recipe.data.format)
        for problem in self.dataset.problems[:20]:
            log(problem)
        if len(self.dataset.problems) > 20:
            log(f"... and {len(self.dataset.problems) - 20} more missing videos")
        self.labels = self.dataset.labels
        self.train_items = self._items("train")
        self.val_items = self._items("val")
        self.test_items = self._items("test")
        if not self.train_items:
            raise ConfigError(f"dataset {args.dataset}: no training video with {self._needs()}")
        if not self.test_items:
            raise ConfigError(f"dataset {args.dataset}: no test video with {self._needs()} (add splits.json)")
        self.metric = self.recipe.train.metric or DEFAULT_METRIC[self.family.task]
        self.seed, self.workers = self.recipe.train.seed, self.recipe.data.num_workers
        self.failed: dict[str, str] = {}
        self.epoch = 0
        self._check_out_folder()

    # -- set-up ------------------------------------------------------------------------------------
    def _batch_sizes(self, args: TrainArgs) -> None:
        train = self.recipe.train
        # --batch-size alone keeps the recipe's global batch: only the accumulation changes
        self.batch_size = train.batch_size
        self.global_batch = train.global_batch or train.batch_size
        if self.batch_size < 1 or self.global_batch % self.batch_size:
            raise ConfigError(f"the global batch ({self.global_batch}) must be a multiple of the batch size "
                              f"({self.batch_size}): gradient accumulation runs whole batches")
        self.accumulation = self.global_batch // self.batch_size

    def _needs(self) -> str:
        return "captions" if self.family.task == RETRIEVAL else "a label"

    def _items(self, split: str) -> list[Any]:
        if split not in self.dataset.splits:
            return []
        data = self.recipe.data
        unit = data.unit if split == "train" else data.eval_unit or data.unit
        items = self.dataset.segment_items(split) if unit == "segment" else self.dataset.split(split)
        usable = [i for i in items if (i.captions if self.family.task == RETRIEVAL else i.label is not None)]
        if split == "train" and self.recipe.data.max_items:
            usable = usable[: self.recipe.data.max_items]
        return usable

    def _check_out_folder(self) -> None:
        saved = st.read_state(self.out)
        if saved is not None and not self.args.resume:
            raise ConfigError(f"{self.out} already holds a training run ({st.STATE_FILE}); pass --resume to continue "
                              "it, or choose another --out")
        self.saved = saved if self.args.resume else None
        if self.args.resume and saved is None:
            log(f"--resume: {self.out} holds no run yet; starting one")

    def build_operator(self) -> Any:
        import vtzoo

        recipe = self.recipe
        config = self.family.model_config(dict(recipe.config), self.labels)
        self.op = vtzoo.create(recipe.operator, recipe.variant, weights=recipe.weights, device=self.args.device,
                               precision=recipe.train.precision, seed=self.seed, batch_size=self.batch_size,
                               **config, **resolve_resources(recipe.options))
        torch.manual_seed(self.seed)  # the training randomness (dropout, sampled positions)
        from vtzoo.precision import autocast

        self.precision = self.op.precision  # the operator's option, resolved for its device
        self.autocast: Callable[[], Any] = lambda: autocast(self.precision, self.op.device)
        return self.op

    def identity(self) -> dict[str, Any]:
        import dataclasses

        config = self.op.model.config
        return {
            "operator": self.recipe.operator,
            "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config),
            "recipe": {**self.recipe.to_dict(), "path": self.recipe.path},
            "dataset": str(Path(self.args.dataset).resolve()),
            "batch_size": self.batch_size,
            "global_batch": self.global_batch,
            "precision": self.precision,
        }

    def settings_for_epoch(self, epoch: int) -> Any:
        return self.family.epoch_settings(self.base_settings, epoch)

    def note_failures(self, failures: Sequence[Failed]) -> None:
        for failure in failures:
            if failure.key not in self.failed:
                self.failed[failure.key] = failure.reason
                log(f"skipped {failure.key}: {failure.reason}")

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.build_operator()
        identity = self.identity()
        if self.saved is not None:
            st.check_resumable(self.saved, identity, self.out)
        else:
            st.clear_run(self.out, [*RUN_FILES, *(p.name for p in self.out.glob(f"{st.CHECKPOINT_PREFIX}*"))])
        st.write_atomic(self.out / "recipe.json", json.dumps(self.recipe.to_dict(), indent=1))
        if self.family.task == CLASSIFICATION:
            st.write_atomic(self.out / "labels.json", json.dumps(self.labels, indent=1))
        self.family.prepare(self)
        samples = training_samples(self.train_items, self.recipe.data.expand_captions)
        self.steps_per_epoch = math.ceil(len(samples) / self.global_batch)
        self.total_steps = self.steps_per_epoch * self.recipe.train.epochs
        groups = parameter_groups(self.family.parameters(self.op), self.recipe.optimizer)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = build_optimizer(groups, self.recipe.optimizer, self.recipe.train.grad_clip)
        self.scheduler, self.plateau = build_scheduler(self.optimizer, self.recipe.schedule, self.total_steps,
                                                         self.steps_per_epoch)
        progress = self._restore(identity)
        log(f"{self.recipe.operator} / recipe {self.recipe.name}: {len(samples)} training samples, "
            f"{len(self.val_items)} val, {len(self.test_items)} test; batch {self.batch_size} x {self.accumulation} "
            f"= {self.global_batch} per step, {self.total_steps} steps, precision {self.precision}")
        self._loop(samples, progress, identity)
        return self._finish(identity)

    def _restore(self, identity: dict[str, Any]) -> dict[str, Any]:
        progress = {"epoch": 0, "step": 0, "consumed": 0, "elapsed": 0.0, "best": None, "best_step": None,
                    "stale": 0, "finished": False, "stopped_by": None, "failed": {}}
        if self.saved is None:
            return progress
        model_state, optimizer_state, rng = st.load_checkpoint(self.out, self.saved)
        self.op.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(self.saved["scheduler"])
        if self.plateau is not None and self.saved.get("plateau"):
            self.plateau.load_state_dict(self.saved["plateau"])
        torch.set_rng_state(rng)
        progress.update(self.saved["progress"])
        if progress["finished"] and progress["stopped_by"] != "early_stopping" and (
                progress["epoch"] < self.recipe.train.epochs):
            progress["finished"] = False  # stopped by a budget, or more epochs asked for: go on
        self.failed = dict(progress["failed"])
        _drop_lines_after(self.out / "steps.jsonl", progress["step"])
        _drop_lines_after(self.out / "metrics.jsonl", progress["step"])
        log(f"resuming at epoch {progress['epoch']}, step {progress['step']} from {self.saved['checkpoint']}")
        return progress

    def _loop(self, samples: list[Any], progress: dict[str, Any], identity: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        train = self.recipe.train
        started = time.monotonic() - progress["elapsed"]
        self._set_train_mode(True)
        stop = progress["finished"]
        while not stop and progress["epoch"] < train.epochs:
            self.epoch = epoch = progress["epoch"]
            settings = self.settings_for_epoch(epoch)
            order = self._epoch_order(samples, epoch, progress)
            remaining = order[progress["consumed"]:]
            loader = make_loader(
                SampleDataset(remaining, lambda s, rng, _set=settings: self.family.load(self.op, s, _set, True, rng),
                              self.seed, epoch, progress["consumed"]),
                self.batch_size, self.family.collate, self.workers)
            bar = tqdm(total=math.ceil(len(order) / self.global_batch), initial=progress["consumed"] // self.global_batch,
                       desc=f"epoch {epoch + 1}/{train.epochs}", disable=not self.args.progress, file=sys.stderr)
            pending: list[dict[str, Any]] = []
            for batch in loader:
                self.note_failures(batch["failed"])
                pending.append(batch)
                progress["consumed"] += batch["size"] + len(batch["failed"])
                if len(pending) < self.accumulation and progress["consumed"] < len(order):
                    continue
                loss = self._step([b for b in pending if b["size"]], settings, progress)
                pending = []
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                progress["elapsed"] = time.monotonic() - started
                if progress["step"] % train.checkpoint_every == 0 and progress["consumed"] < len(order):
                    self._checkpoint(progress, identity)
                budget = self._budget_spent(progress)
                if budget:
                    log(f"{budget} reached at step {progress['step']}")
                    self._validate(progress)
                    stop, progress["stopped_by"] = True, "budget"
                    if progress["consumed"] >= len(order):  # the epoch is complete: a resumption starts the next
                        progress["epoch"], progress["consumed"] = epoch + 1, 0
                    break
            bar.close()
            if not stop:
                progress["epoch"], progress["consumed"] = epoch + 1, 0
                stop = self._end_of_epoch(progress)
                progress["stopped_by"] = "early_stopping" if stop else None
            progress["elapsed"] = time.monotonic() - started
            self._checkpoint(progress, identity)
        progress["finished"] = True
        self._checkpoint(progress, identity)

    def _budget_spent(self, progress: dict[str, Any]) -> str | None:
        train = self.recipe.train
        if train.max_minutes is not None and progress["elapsed"] >= train.max_minutes * 60:
            return f"the time budget of {train.max_minutes} min"
        if train.max_steps is not None and progress["step"] >= train.max_steps:
            return f"the step budget of {train.max_steps} steps"
        return None

    def _epoch_order(self, samples: list[Any], epoch: int, progress: dict[str, Any]) -> list[Any]:
        """The epoch's samples in order; failed items stay in it (they fail again, quickly), so
        positions never shift between a run and its resumption."""
        if progress.get("order_epoch") != epoch:
            progress["order"] = self.family.epoch_order(self, samples, epoch)
            progress["order_epoch"] = epoch
        if progress["order"] is None:
            return epoch_order(samples, self.seed, epoch)
        return [samples[i] for i in progress["order"]]

    def _set_train_mode(self, mode: bool) -> None:
        for module in self.family.trained_modules(self.op):
            module.train(mode)

    # -- one optimizer step -------------------------------------------------------------------------
    def _step(self, batches: list[dict[str, Any]], settings: Any, progress: dict[str, Any]) -> float:
        if not batches:
            return float("nan")
        total = sum(b["size"] for b in batches)
        if self.family.task == CLASSIFICATION:
            index = {label: i for i, label in enumerate(self.labels)}
            for batch in batches:
                batch["target"] = torch.tensor([index[label] for label in batch["label"]], device=self.op.device)
        if len(batches) == 1 or not self.family.cross_batch:
            value = 0.0
            for batch in batches:
                with self.autocast():
                    encoded = self.family.encode(self.op, batch, settings)
                loss = self._loss(encoded, settings)
                self._check_finite(loss, batches, progress)
                (loss * (batch["size"] / total)).backward()
                value += float(loss.detach()) * batch["size"] / total
        else:
            value = self._cached_step(batches, settings, progress)
        if self.recipe.train.grad_clip and self.recipe.optimizer.name != "bertadam":  # BertAdam clips per parameter
            torch.nn.utils.clip_grad_norm_(self.params, self.recipe.train.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        progress["step"] += 1
        lr = self.optimizer.param_groups[0]["lr"]
        with (self.out / "steps.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": progress["step"], "epoch": self.epoch + 1, "loss": value, "lr": lr}) + "\n")
        return value

    def _cached_step(self, batches: list[dict[str, Any]], settings: Any, progress: dict[str, Any]) -> float:
        rng_states, leaves = [], []
        for batch in batches:
            rng_states.append(torch.get_rng_state())
            with torch.no_grad(), self.autocast():
                encoded = self.family.encode(self.op, batch, settings)
            leaves.append({k: v.detach().requires_grad_(v.is_floating_point()) for k, v in encoded.items()})
        loss = self._loss(self.family.merge(leaves), settings)
        self._check_finite(loss, batches, progress)
        loss.backward()
        after = torch.get_rng_state()
        for batch, rng_state, leaf in zip(batches, rng_states, leaves):
            torch.set_rng_state(rng_state)  # the same dropout masks as the cached pass
            with self.autocast():
                encoded = self.family.encode(self.op, batch, settings)
            # inputs the loss reads (e.g. the features a contrastive loss compares with) have no graph
            pairs = [(encoded[k], leaf[k].grad) for k in encoded if leaf[k].grad is not None and encoded[k].requires_grad]
            if pairs:
                torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        torch.set_rng_state(after)
        return float(loss.detach())

    def _loss(self, encoded: dict[str, torch.Tensor], settings: Any) -> torch.Tensor:
        """The family's loss in float32 (logits of 0.05-temperature softmaxes or 0.05 margins do
        not survive bf16), on the encodings the network computed in the run's precision."""
        with torch.autocast(self.op.device.type, enabled=False):
            encoded = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in encoded.items()}
            return _scalar(self.family.loss(self.op, encoded, settings))

    def _check_finite(self, loss: torch.Tensor, batches: list[dict[str, Any]], progress: dict[str, Any]) -> None:
        if torch.isfinite(loss.detach()).all():
            return
        keys = [k for b in batches for k in b["key"]]
        shown = ", ".join(keys[:8]) + (f" (+{len(keys) - 8} more)" if len(keys) > 8 else "")
        raise TrainingError(f"the loss is {float(loss.detach())} at step {progress['step'] + 1} (epoch {self.epoch + 1}); "
                            f"the batch's videos: {shown}. The last checkpoint is kept; lower the learning rate or "
                            "check these files")

    # -- validation, checkpoints, the end -----------------------------------------------------------
    def _end_of_epoch(self, progress: dict[str, Any]) -> bool:
        """Validate (every ``eval_every`` epochs); True when early stopping says to stop."""
        train = self.recipe.train
        if self.val_items and progress["epoch"] % train.eval_every:
            return False
        self._validate(progress)
        return train.early_stopping is not None and progress["stale"] >= train.early_stopping

    def _validate(self, progress: dict[str, Any]) -> None:
        """Score the model on the val split and keep it if it is the best so far."""
        if not self.val_items:
            self._save_model()  # nothing to compare: the latest model is the result
            return
        metrics = evaluate(self, self.val_items)
        value = metrics.get(self.metric)
        if value is None:
            raise ConfigError(f"train.metric {self.metric!r} is not a validation metric ({', '.join(metrics)})")
        self._record("val", progress, metrics)
        if self.plateau is not None:
            self.plateau.step(value)
        if progress["best"] is None or value > progress["best"]:
            progress.update(best=value, best_step=progress["step"], stale=0)
            self._save_model()
        else:
            progress["stale"] += 1
        log(f"step {progress['step']}: val {self.metric} = {value:.4f} (best {progress['best']:.4f} at step "
            f"{progress['best_step']})")

    def _record(self, split: str, progress: dict[str, Any], metrics: dict[str, Any]) -> None:
        line = {"split": split, "epoch": progress["epoch"], "step": progress["step"],
                "elapsed_s": round(progress["elapsed"], 1), **metrics}
        with (self.out / "metrics.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def _save_model(self) -> None:
        tmp = self.out / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.family.save(self.op, tmp)
        for file in sorted(tmp.rglob("*")):
            if file.is_file():
                target = self.out / file.relative_to(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                file.replace(target)
        shutil.rmtree(tmp, ignore_errors=True)

    def _checkpoint(self, progress: dict[str, Any], identity: dict[str, Any]) -> None:
        progress["failed"] = dict(self.failed)
        state = {"identity": identity, "progress": progress, "scheduler": self.scheduler.state_dict(),
                 "plateau": self.plateau.state_dict() if self.plateau is not None else None,
                 "total_steps": self.total_steps}
        st.save_checkpoint(self.out, progress["step"], self.op.model.state_dict(), self.optimizer, state)

    def _finish(self, identity: dict[str, Any]) -> dict[str, Any]:
        from vtzoo.registry.weights import WEIGHTS_NAME
        from safetensors.torch import load_file

        saved = st.read_state(self.out) or {}
        progress = saved.get("progress", {})
        if not (self.out / WEIGHTS_NAME).is_file():
            self._save_model()
        best = load_file(str(self.out / WEIGHTS_NAME))
        current = self.op.model.state_dict()
        self.op.model.load_state_dict({k: best.get(k, v) for k, v in current.items()})
        metrics = evaluate(self, self.test_items)
        if self.failed:
            metrics["skipped_videos"] = len(self.failed)
        self._record("test", progress, metrics)
        from vtzoo.training.report import plot_run

        plot_run(self.out, self.metric)
        return metrics


def _drop_lines_after(path: Path, step: int) -> None:
    """Forget log lines written after the checkpoint a run resumes from (they will be written again)."""
    if path.is_file():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step]
        st.write_atomic(path, "".join(line + "\n" for line in lines))


def _scalar(loss: Any) -> torch.Tensor:
    return loss["loss"] if isinstance(loss, dict) else loss


def train(op: str, dataset: str | Path, out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Train ``op`` on ``dataset`` into ``out`` (see ``vtzoo train --help``); returns the test metrics."""
    return Trainer(TrainArgs(op=op, dataset=dataset, out=out, **kwargs)).run()
