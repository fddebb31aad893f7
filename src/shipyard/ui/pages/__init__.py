"""The dashboard's areas, one module each; every module exposes ``router`` with its pages."""

from shipyard.ui.pages import automations, datasets, deployments, governance, models, monitoring, pipelines, runs

PAGE_ROUTERS = [
    runs.router,
    models.router,
    datasets.router,
    pipelines.router,
    deployments.router,
    monitoring.router,
    governance.router,
    automations.router,
]
