"""Optimizers, parameter groups and learning-rate schedules of the recipes.

Parameter groups: the recipe's ``optimizer.groups`` match parameter names with fnmatch patterns
(first match wins) and scale the learning rate (CLIP4Clip's ``coef_lr``: CLIP at lr x 1e-3) or
freeze; ``optimizer.no_decay`` lists name substrings trained without weight decay (the BERT-style
``bias`` / ``LayerNorm.weight`` rule). Schedules are multiplicative factors of each group's
learning rate per optimizer step (``torch.optim.lr_scheduler.LambdaLR``), except ``plateau``
(``ReduceLROnPlateau`` on the validation metric, stepped per validation).

``bertadam`` is the optimizer of the CLIP4Clip/DRL code (pytorch-pretrained-bert's BertAdam):
Adam without bias correction, decoupled weight decay added to the update, each parameter's
gradient clipped to ``max_grad_norm`` on its own.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable, Sequence

import torch

from vtzoo.errors import ConfigError
from vtzoo.training.recipe import OptimizerSection, ScheduleSection


class BertAdam(torch.optim.Optimizer):
    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 max_grad_norm: float = 1.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["next_m"] = torch.zeros_like(p)
                    state["next_v"] = torch.zeros_like(p)
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(p, group["max_grad_norm"])
                grad = p.grad
                state["next_m"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["next_v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = state["next_m"] / (state["next_v"].sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update = update + group["weight_decay"] * p
                p.add_(update, alpha=-group["lr"])
        return loss


def parameter_groups(named: Sequence[tuple[str, torch.nn.Parameter]], cfg: OptimizerSection) -> list[dict[str, Any]]:
    """Split parameters into optimizer groups; frozen ones get ``requires_grad=False``."""
    buckets: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    names: dict[tuple[int, bool], list[str]] = {}
    for name, param in named:
        group_index = next((i for i, g in enumerate(cfg.groups) if any(fnmatch.fnmatch(name, p) for p in g.params)), -1)
        group = cfg.groups[group_index] if group_index >= 0 else None
        if group is not None and group.freeze:
            param.requires_grad_(False)
            continue
        if not param.requires_grad:
            continue
        decay = not any(nd in name for nd in cfg.no_decay)
        buckets.setdefault((group_index, decay), []).append(param)
        names.setdefault((group_index, decay), []).append(name)
    for i, group in enumerate(cfg.groups):
        if not any(key[0] == i for key in buckets) and not group.freeze:
            raise ConfigError(f"optimizer.groups[{i}]: the patterns {group.params} match no parameter")
    out = []
    for (index, decay), params in sorted(buckets.items(), key=lambda kv: kv[0]):
        group = cfg.groups[index] if index >= 0 else None
        weight_decay = (group.weight_decay if group and group.weight_decay is not None else cfg.weight_decay)
        out.append({"params": params, "lr": cfg.lr * (group.lr_scale if group else 1.0),
                    "weight_decay": weight_decay if decay else 0.0, "names": names[(index, decay)]})
    if not out:
        raise ConfigError("no trainable parameter left (every parameter is frozen)")
    return out


def build_optimizer(groups: list[dict[str, Any]], cfg: OptimizerSection, grad_clip: float | None) -> torch.optim.Optimizer:
    groups = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    if cfg.name == "bertadam":
        return BertAdam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, max_grad_norm=grad_clip or 0.0)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "adam":  # L2 penalty in the gradient, as torch.optim.Adam / fairseq's adam
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "radam":
        return torch.optim.RAdam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


class Plateau:
    """ReduceLROnPlateau on the validation metric (higher is better), as a factor of the learning
    rate: after ``patience`` validations without a new best it is multiplied by ``factor``, then
    ``cooldown`` validations pass before the next reduction can happen."""

    def __init__(self, factor: float, patience: int, cooldown: int):
        self.factor, self.patience, self.cooldown = factor, patience, cooldown
        self.scale, self.best, self.bad, self.cooling = 1.0, -math.inf, 0, 0

    def step(self, metric: float) -> None:
        if metric > self.best:
            self.best, self.bad = metric, 0
        else:
            self.bad += 1
        if self.cooling:
            self.cooling -= 1
            self.bad = 0
        elif self.bad > self.patience:
            self.scale *= self.factor
            self.cooling, self.bad = self.cooldown, 0

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "cooling": self.cooling}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale, self.best, self.bad, self.cooling = state["scale"], state["best"], int(state["bad"]), int(state["cooling"])


def lr_factor(cfg: ScheduleSection, total_steps: int, base_lr: float, plateau: Plateau | None = None,
              steps_per_epoch: int = 1) -> Callable[[int], float]:
    """The learning-rate multiplier at optimizer step ``step`` (0-based) of ``total_steps``."""
    total = max(1, total_steps)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(round(cfg.warmup * total))

    def factor(step: int) -> float:
        x = step / total
        if warmup and step < warmup and cfg.name != "warmup_cosine":
            return step / warmup
        if cfg.name == "constant":
            return 1.0
        if cfg.name == "plateau":
            return plateau.scale if plateau is not None else 1.0
        if cfg.name == "step":
            return cfg.gamma ** (step // max(1, steps_per_epoch * cfg.step_epochs))
        if cfg.name == "warmup_cosine":  # BertAdam's: cosine over the whole run, not after warm-up
            return step / warmup if warmup and step < warmup else 0.5 * (1.0 + math.cos(math.pi * x))
        if cfg.name == "warmup_linear":
            return max(0.0, (1.0 - x) / (1.0 - warmup / total))
        after = min(1.0, (step - warmup) / max(1, total - warmup))
        if cfg.name == "cosine":  # TF Model Garden: linear warm-up, then cosine to 0 over the rest
            return 0.5 * (1.0 + math.cos(math.pi * after))
        # polynomial (fairseq): warm-up to lr, then (lr - end_lr) * (1 - progress)^power + end_lr
        end = cfg.end_lr / base_lr if base_lr else 0.0
        return (1.0 - end) * (1.0 - after) ** cfg.power + end

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleSection, total_steps: int, steps_per_epoch: int = 1):
    """(per-step LambdaLR, the Plateau it reads for ``plateau`` schedules, else None)."""
    base = optimizer.param_groups[0]["lr"]
    plateau = Plateau(cfg.factor, cfg.patience, cfg.cooldown) if cfg.name == "plateau" else None
    factor = lr_factor(cfg, total_steps, base, plateau, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), plateau
