"""Datasets: content-addressed, immutable, profiled versions with lineage to runs, pipelines and models."""
