"""What identifies a computed result: the operator's weights, the pipeline's steps, the input's bytes.

A resumable job keys every finished input by all three (:func:`pipeline_fingerprint` covers the
first two), so changing the variant, the weights, a step parameter or the file itself recomputes
it, and nothing else does.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

# settings that change how a step runs, not what it computes
_RUN_SETTINGS = ("device",)
# filled in for index steps from the operator that feeds them (see Engine.params)
BOUND_PARAMS = ("operator", "variant", "fingerprint")


def _op_identity(op: Any) -> str:
    if isinstance(op, str):
        return op
    try:  # a Python callable: its code is what it computes
        source = inspect.getsource(op)
    except (OSError, TypeError):
        source = ""
    name = f"{getattr(op, '__module__', '')}.{getattr(op, '__qualname__', repr(type(op)))}"
    return f"{name}:{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def pipeline_fingerprint(spec: Any, operator_fingerprints: dict[str, str]) -> str:
    """A short hash of the steps (kinds, ops, columns, parameters) and of the operators they build."""
    steps = [{"kind": s.kind, "op": _op_identity(s.op), "inputs": s.inputs, "outputs": s.outputs,
              "params": {k: v for k, v in s.params.items() if k not in _RUN_SETTINGS and k not in BOUND_PARAMS}}
             for s in spec.steps]
    payload = {"inputs": spec.inputs, "steps": steps, "outputs": spec.outputs, "operators": operator_fingerprints}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:20]
