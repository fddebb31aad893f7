"""Shipyard: one coherent MLOps platform — tracking, registry, lineage, deployment, monitoring, governance.

The SDK in one import::

    import shipyard
    with shipyard.start_run():
        shipyard.log_param("C", 1.0)
        shipyard.log_metric("accuracy", 0.93)

``shipyard.Client`` is the explicit form; both work embedded (SQLite + local files under
``./.shipyard``) or against ``shipyard server`` when ``SHIPYARD_URI`` is set.
"""

__version__ = "0.1.0"

from shipyard import data  # noqa: E402
from shipyard.client.client import Client  # noqa: E402
from shipyard.client.fluent import (  # noqa: E402
    ActiveRun,
    active_run,
    end_run,
    flush,
    get_client,
    load_dataset,
    load_model,
    log_artifact,
    log_artifacts,
    log_dataset,
    log_dict,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    log_predictions,
    record_labels,
    register_model,
    search_runs,
    set_alias,
    set_client,
    set_experiment,
    set_seed,
    set_tag,
    set_tags,
    start_run,
)
from shipyard.pipelines import pipeline, step  # noqa: E402

__all__ = [
    "ActiveRun",
    "Client",
    "active_run",
    "end_run",
    "flush",
    "get_client",
    "data",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_predictions",
    "record_labels",
    "pipeline",
    "register_model",
    "search_runs",
    "set_alias",
    "set_client",
    "set_experiment",
    "set_seed",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
]
