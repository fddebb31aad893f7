"""A remote inference server's prediction log: segments uploaded as blobs, indexed through the API."""

from __future__ import annotations

from pathlib import Path

from shipyard import Client
from shipyard.core.settings import Settings
from shipyard.serving.prediction_log import PredictionLog, read_predictions
from tests.conftest import ThreadedServer


def test_a_remote_client_logs_predictions_into_the_servers_store(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "server", remote_uri="")
    with ThreadedServer(settings) as server:
        client = Client(uri=server.url, home=tmp_path / "client")
        plog = PredictionLog.for_client(client, flush_interval=3600.0)
        try:
            for i in range(3):
                assert plog.record(
                    endpoint="churn", model="churn-model", version=2, variant="candidate",
                    request_id=f"req{i}", inputs=[{"age": 30 + i}], outputs=[i * 0.5], latency_ms=1.5,
                    routing={"rule": "weighted", "variant": "candidate"},
                )  # fmt: skip
            assert plog.flush(timeout=30)
            assert plog.stats["segments"] == 1 and plog.stats["errors"] == 0
        finally:
            plog.close()
        services = server.app.state.services
        logged = read_predictions(services.db, services.artifacts, endpoint="churn")
        assert list(logged["prediction_id"]) == ["req0-0", "req1-0", "req2-0"]
        assert set(logged["variant"]) == {"candidate"} and list(logged["prediction"]) == [0.0, 0.5, 1.0]
        (segment,) = client._call("predictions", "list_segments", endpoint="churn")
        assert segment.rows == 3 and segment.model_version == 2
        entries = client.read_journal(action="prediction_segment.written")
        assert [e.entity_id for e in entries] == [segment.id] and entries[0].actor == "prediction-log"
        client.close()
