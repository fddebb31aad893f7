"""Route-level authorization: may the caller run this operation on this resource?

Every generated route asks ``authorize(services, op, arguments)`` before calling the service. The
operation declares the permission it needs (``Operation.required_permission``) and, optionally, the
argument naming the resource a scoped grant applies to: a registered model, an experiment, or a
run (which belongs to an experiment). Fine-grained rules (who may approve, protected aliases,
overrides) stay in the services.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shipyard.api.operation import Operation
from shipyard.services import Services
from shipyard.store import schema as t


def authorize(services: Services, op: Operation, arguments: dict[str, Any]) -> None:
    if op.permission == "authenticated":  # any caller the middleware let in (whoami, own tokens)
        return
    model, experiment = _scope(services, op, arguments)
    services.access.require(op.required_permission, model=model, experiment=experiment)


def _scope(services: Services, op: Operation, arguments: dict[str, Any]) -> tuple[str | None, str | None]:
    if op.scope is None:
        return None, None
    kind, argument = op.scope
    value = arguments.get(argument)
    if value is None:
        return None, None
    value = str(value)
    if kind == "model":
        return value, None
    with services.db.read() as conn:
        if kind == "run":
            experiment = conn.execute(sa.select(t.runs.c.experiment_id).where(t.runs.c.id == value)).scalar()
        else:  # an experiment given by id or by name
            experiment = conn.execute(
                sa.select(t.experiments.c.id).where(sa.or_(t.experiments.c.id == value, t.experiments.c.name == value))
            ).scalar()
    return None, experiment
