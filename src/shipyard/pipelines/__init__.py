"""Pipelines: ``@step`` functions composed by ``@pipeline`` functions into a cached, recorded DAG."""
