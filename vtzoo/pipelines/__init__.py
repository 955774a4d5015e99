"""Pipelines: operators composed over named columns, as code or as a YAML spec."""

from vtzoo.pipelines.engine import Failure, PipelineError, RunResult
from vtzoo.pipelines.jobstore import JobStore
from vtzoo.pipelines.ops import pipeline_op
from vtzoo.pipelines.pipeline import Pipeline
from vtzoo.pipelines.spec import PipelineSpec, SpecError

__all__ = ["Failure", "JobStore", "Pipeline", "PipelineError", "PipelineSpec", "RunResult", "SpecError", "pipeline_op"]
