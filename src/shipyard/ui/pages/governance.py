"""Dashboard pages: governance — the model inventory, the audit journal, policies, evidence bundles.

The journal is shown newest first, filtered by model, action and actor, and paged by sequence
number. Its hash chain is re-verified on the page only while that is cheap (about 1.5 s per 100,000
entries): a bigger journal shows the last verification (kept per store in this process) and a
button to verify now. Evidence bundles are built by the audit service and downloaded as zips,
with the same permission as the API's bundle operation (read on the model).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.time import now_ms
from shipyard.services import Services
from shipyard.store.entities import JournalEntry
from shipyard.ui.web import render, services_of

router = APIRouter()

PAGE_SIZE = 50
# Walking back over the journal for a filtered page: windows of sequence numbers that grow while they
# come back (nearly) empty. Filters the journal service applies in SQL (action, model) return only
# matches, so a request may cover MAX_SCAN entries; the actor filter is applied here, on every entry
# read, so it covers at most ACTOR_SCAN (reading an entry costs ~50 µs). The "older" link continues.
FIRST_WINDOW = 2 * PAGE_SIZE
MAX_WINDOW = 10_000  # = the journal service's largest read
MAX_SCAN = 100_000
ACTOR_SCAN = 4_000
AUTO_VERIFY_MAX = 10_000  # entries a page load verifies by itself (~0.15 s); beyond that, on request
MAX_VIOLATIONS = 30


# --------------------------------------------------------------------------------------------------
# /governance


@router.get("/governance")
def governance_home(request: Request) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    items = services.inventory.model_inventory()
    counts = {
        "models": len(items),
        "high": sum(1 for i in items if i.risk_tier == "high"),
        "unset": sum(1 for i in items if not i.risk_tier),
        "in_review": sum(1 for i in items for v in i.versions if v.stage == "in_review"),
        "alerts": sum(len(i.open_alerts) for i in items),
        "attention": sum(1 for i in items if i.status != "ok"),
    }
    return render(request, "governance_home.html", items=items, counts=counts, tab="inventory")


# --------------------------------------------------------------------------------------------------
# /governance/audit


@dataclass
class Verification:
    result: dict[str, Any]
    head: int  # the journal's last seq when it was verified
    at: int  # epoch ms
    seconds: float


_verified: dict[str, Verification] = {}  # store URI -> the latest verification in this process
_verify_lock = threading.Lock()


@router.get("/governance/audit")
def audit_page(
    request: Request, model: str = "", action: str = "", actor: str = "", before: str = "", verify: str = ""
) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    head = services.journal.last_seq()
    start = _seq(before, "before", head) if before else head
    entity_id = None
    if model:
        services.access.require("read", model=model)
        entity_id = services.registry.get_model(model).id  # NotFound → 404 page
    entries, scanned_to = _page(services, start, action.strip() or None, actor.strip(), entity_id)
    names = {m.id: m.name for m in services.registry.list_models()}
    verification = _verification(services, head, force=bool(verify))
    checkpoints = services.audit.export_checkpoints(after=max(0, head - 1_000_000))
    return render(
        request,
        "governance_audit.html",
        tab="audit",
        entries=entries,
        names=names,
        head=head,
        start=start,
        older=scanned_to if scanned_to > 0 else None,
        model=model,
        action=action,
        actor=actor,
        verification=verification,
        checkpoint=checkpoints[-1] if checkpoints else None,
        auto_verify_max=AUTO_VERIFY_MAX,
    )


def _seq(text: str, field: str, head: int) -> int:
    if not text.isdigit():
        raise InvalidInput(f"{field} must be a journal sequence number, not {text!r}", field=field)
    return min(int(text), head)


def _page(
    services: Services, start: int, action: str | None, actor: str, entity_id: str | None
) -> tuple[list[JournalEntry], int]:
    """Up to PAGE_SIZE matching entries with seq <= start, newest first, and the seq the next (older)
    page starts from (0 when the journal's beginning was reached)."""
    found: list[JournalEntry] = []
    budget = ACTOR_SCAN if actor else MAX_SCAN
    upper, window = start, FIRST_WINDOW
    while upper > 0 and len(found) < PAGE_SIZE and start - upper < budget:
        lower = max(0, upper - min(window, budget - (start - upper)))
        # limit = the window's width, so every match in (lower, upper] comes back
        rows = services.journal.read(
            after=lower,
            limit=upper - lower,
            action=action,
            entity_type="model" if entity_id else None,
            entity_id=entity_id,
        )
        matching = [e for e in rows if e.seq <= upper and (not actor or e.actor == actor)]
        for entry in reversed(matching):
            found.append(entry)
            if len(found) == PAGE_SIZE:
                return found, entry.seq - 1
        upper = lower
        window = min(window * 4, ACTOR_SCAN if actor else MAX_WINDOW)
    return found, upper


def _verification(services: Services, head: int, force: bool) -> Verification | None:
    """The chain verification to show: re-run when asked or while the journal is small, else the last one."""
    key = services.settings.store_uri
    known = _verified.get(key)
    fresh = known is not None and known.head == head  # nothing appended since: reuse unless asked
    if not force and (fresh or head > AUTO_VERIFY_MAX):
        return known
    if not _verify_lock.acquire(blocking=force):  # one verification at a time; page loads never queue
        return known
    try:
        started = time.perf_counter()
        result = services.journal.verify()
        known = Verification(result=result, head=head, at=now_ms(), seconds=time.perf_counter() - started)
        _verified[key] = known
        return known
    finally:
        _verify_lock.release()


# --------------------------------------------------------------------------------------------------
# /governance/policies


@router.get("/governance/policies")
def policies_page(request: Request) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    policies = services.governance.list_policies()
    names = {m.id: m.name for m in services.registry.list_models()}
    violations = _violations(services, names)
    return render(request, "governance_policies.html", tab="policies", policies=policies, violations=violations)


def _violations(services: Services, names: dict[str, str]) -> list[dict[str, Any]]:
    """Recent gate decisions that blocked a version, newest first, from the journal's policy.evaluated
    entries (each names its decision and every violated rule with measured value and threshold)."""
    found: list[dict[str, Any]] = []
    head = upper = services.journal.last_seq()
    while upper > 0 and len(found) < MAX_VIOLATIONS and head - upper < MAX_SCAN:
        lower = max(0, upper - MAX_WINDOW)
        for entry in reversed(services.journal.read(after=lower, limit=upper - lower, action="policy.evaluated")):
            payload = entry.payload or {}
            if entry.seq > upper or payload.get("passed", True):
                continue
            found.append({"entry": entry, "model": names.get(entry.entity_id, entry.entity_id), **payload})
            if len(found) == MAX_VIOLATIONS:
                break
        upper = lower
    return found


# --------------------------------------------------------------------------------------------------
# evidence bundles


@router.get("/governance/bundles/{name}/{version}.zip")
def bundle_download(request: Request, name: str, version: str) -> Response:
    services = services_of(request)
    services.access.require("read", model=name)  # as the API's build_bundle operation
    if not version.isdigit() or not 1 <= int(version) <= 2**31 - 1:
        raise NotFound(f"no version {version!r} of {name!r}", field="version")
    bundle = services.audit.build_bundle(name, int(version))
    data = services.artifacts.read_bytes(bundle.digest)
    filename = f"{name}-v{version}-evidence.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{filename}"', "x-bundle-digest": bundle.digest},
    )
