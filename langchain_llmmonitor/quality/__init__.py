"""The quality layer off the request path: the judge pool (`QualityPipeline`), its budget and cache, and the judges."""

from .pipeline import EvaluationSink, QualityPipeline

__all__ = ["EvaluationSink", "QualityPipeline"]
