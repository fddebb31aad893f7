"""Pipelines: ``@step`` functions composed by ``@pipeline`` functions into a cached, recorded DAG."""

from shipyard.pipelines.decorators import pipeline, step

__all__ = ["pipeline", "step"]
