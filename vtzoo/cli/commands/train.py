"""``vtzoo train``: train or fine-tune an operator on a dataset folder."""

from __future__ import annotations

import argparse
import json

from vtzoo.cli.common import EXIT_FAILED, EXIT_OK, parse_config, usage_error


def cmd_train(args: argparse.Namespace) -> int:
    from vtzoo.errors import ConfigError, InputError
    from vtzoo.training.trainer import Trainer, TrainArgs, TrainingError

    op, variant = args.op, args.variant
    if variant is None and "/" in op:
        op, variant = op.split("/", 1)
    train_args = TrainArgs(
        op=op, dataset=args.dataset, out=args.out, variant=variant, recipe=args.recipe, weights=args.weights,
        epochs=args.epochs, max_minutes=args.max_minutes, batch_size=args.batch_size, global_batch=args.global_batch,
        precision=args.precision, seed=args.seed, resume=args.resume, device=args.device,
        overrides=parse_config(args.set), progress=not args.quiet,
    )
    try:
        trainer = Trainer(train_args)
    except (ConfigError, InputError) as exc:  # bad flags, recipe or dataset: nothing was computed
        return usage_error("train", exc)
    try:
        metrics = trainer.run()
    except ConfigError as exc:  # found once the model exists (e.g. --resume of another run)
        return usage_error("train", exc)
    except TrainingError as exc:
        print(f"vtzoo train: error: {exc}", flush=True)
        return EXIT_FAILED
    print(json.dumps(metrics), flush=True)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune an operator on a dataset folder (vtzoo layout or a release)")
    p.add_argument("--op", required=True, help="operator name, or name/variant")
    p.add_argument("--variant", default=None)
    p.add_argument("--dataset", required=True, help="dataset folder (vtzoo layout, MSR-VTT, DiDeMo, YouCook2, ...)")
    p.add_argument("--out", required=True, help="output folder: model, checkpoints, metrics")
    p.add_argument("--recipe", default=None,
                   help="recipe name (from the family's recipes/) or FILE.yaml (default: synthetic-tiny)")
    p.add_argument("--weights", default=None, help="starting weights (default: the recipe's)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this many minutes")
    p.add_argument("--batch-size", type=int, default=None, help="items per forward pass")
    p.add_argument("--global-batch", type=int, default=None,
                   help="items per optimizer step; gradient accumulation = global batch / batch size")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16", "auto"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a recipe field, e.g. train.eval_every=2 or optimizer.lr=3e-4 (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)
