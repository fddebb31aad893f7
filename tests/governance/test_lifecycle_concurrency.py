"""Concurrent reviewers on SQLite and PostgreSQL: with 2 approvals required and three reviewers voting
at once, exactly two votes count, the version is approved once, and the third vote is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.core.context import acting_as
from shipyard.core.errors import Conflict, ShipyardError
from shipyard.core.settings import Settings
from shipyard.services import Services
from shipyard.store import schema as t
from tests.governance.test_lifecycle import TWO_REVIEWERS


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_approvals_approve_once(backend: str, home: Path, request: pytest.FixtureRequest) -> None:
    from sklearn.linear_model import LogisticRegression

    from shipyard import Client

    store_uri = request.getfixturevalue("pg_uri") if backend == "postgres" else None
    client = Client(home=home, store_uri=store_uri)
    try:
        client.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "churn")
        client.add_policy("two-reviewers", TWO_REVIEWERS)
        for name in ("alice", "bob", "carol"):
            client.create_principal(name)
            client.grant_role(name, "reviewer")
        client.submit_for_review("churn", 1)
        # every reviewer gets their own services (their own connections), as separate server workers would
        settings = Settings.resolve(home=home, store_uri=store_uri, remote_uri="")
        outcomes: dict[str, str] = {}
        barrier = threading.Barrier(3)

        def vote(name: str) -> None:
            services = Services(settings)
            try:
                with acting_as(name):
                    barrier.wait()
                    services.governance.approve_version("churn", 1, f"{name} agrees")
                outcomes[name] = "ok"
            except Conflict as exc:
                outcomes[name] = f"conflict: {exc.message}"
            except ShipyardError as exc:  # pragma: no cover - reported by the assertion below
                outcomes[name] = f"{exc.code}: {exc.message}"
            finally:
                services.close()

        threads = [threading.Thread(target=vote, args=(name,)) for name in ("alice", "bob", "carol")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(o.split(":")[0] for o in outcomes.values()) == ["conflict", "ok", "ok"], outcomes
        assert all("it is approved" in o for o in outcomes.values() if o.startswith("conflict")), outcomes
        status = client.review_status("churn", 1)
        assert status.stage == "approved" and len(status.approvals) == 2
        engine = client._backend.services.db.engine  # type: ignore[union-attr]
        with engine.connect() as conn:
            approved = conn.execute(
                sa.select(sa.func.count()).where(t.journal.c.action == "version.approved")
            ).scalar_one()
        assert approved == 1
    finally:
        client.close()
