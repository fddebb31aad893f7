"""Long operations the server runs for HTTP callers: run a pipeline, batch-score a dataset, reproduce a model.

The Python SDK and the CLI run these on the caller's side (the caller's code, the caller's Dask
cluster) and only record through the API. Callers without Python — a CI job with curl, another
service — ask the server to run them instead: each method builds an embedded Client over the
server's own store and runs the same code the SDK runs, synchronously, as the calling user. The
pipeline's code must be importable by the server process.
"""

from __future__ import annotations

from typing import Any

from shipyard.core.settings import Settings
from shipyard.pipelines.batch import BatchResult, batch_score
from shipyard.pipelines.entities import PipelineRun
from shipyard.pipelines.reproduce import Reproduction, reproduce


class JobService:
    def __init__(self, settings: Settings):
        self.settings = settings

    def _client(self) -> Any:
        from shipyard.client import Client

        s = self.settings
        return Client("", home=s.home, store_uri=s.store_uri, artifact_uri=s.artifact_uri)

    def run_pipeline(
        self, target: str, params: dict[str, Any] | None = None, executor: str = "inprocess", no_cache: bool = False
    ) -> PipelineRun:
        """Run the pipeline ``package.module:function`` on the server; a failed run answers 422 with its id."""
        from shipyard.pipelines import run

        with self._client() as client:
            return run(target, params, executor=executor, no_cache=no_cache, client=client)

    def batch_score(
        self,
        model: str,
        dataset: str,
        output: str,
        executor: str = "dask",
        address: str | None = None,
        proba: bool = False,
        prediction_column: str = "prediction",
    ) -> BatchResult:
        """Score dataset version ``dataset`` with ``model`` into a new version of dataset ``output``."""
        with self._client() as client:
            return batch_score(
                client,
                model,
                dataset,
                output,
                executor=executor,
                address=address,
                proba=proba,
                prediction_column=prediction_column,
            )

    def reproduce_model(self, model: str, executor: str = "inprocess") -> Reproduction:
        """Re-run the pipeline that built ``model`` and compare the result with the registered version."""
        with self._client() as client:
            return reproduce(client, model, executor=executor)
