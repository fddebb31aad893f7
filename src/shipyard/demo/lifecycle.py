"""``shipyard demo``: the main job — a small, real model lifecycle, end to end, on the embedded store.

On scikit-learn's bundled breast-cancer data: registers the data as a dataset version (profiled),
infers its data contract and validates the version against it, then trains through the pipeline
in :mod:`shipyard.demo.pipeline` (validation gate → split → a sweep of six tracked runs → register
the best). It runs the pipeline a second time to show every step served from the cache, points
the ``champion`` alias at the registered version, loads the champion back by alias and predicts,
and prints the champion's lineage: dataset version → pipeline run → training run → model version.
Then :mod:`shipyard.demo.rollout` serves the champion and rolls out a challenger as a canary
judged on live traffic, and a faulty release that the judge rolls back; :mod:`shipyard.demo.monitoring`
watches the endpoint drift and :mod:`shipyard.demo.loop` closes the loop (retrain, evaluate, review,
canary, promote) with automations; :mod:`shipyard.demo.governance` approves every release under a
policy (two reviewers, separation of duties) and ends with the champion's verified audit trail.
Keep it readable top to bottom.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.demo.pipeline import MODEL_NAME, TARGET

EXPERIMENT = "breast-cancer"
DATASET = "breast-cancer"


def run_demo(home: str | os.PathLike[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer

    import shipyard
    from shipyard import Client

    console = console or Console()
    client = Client(home=home)
    shipyard.set_client(client)
    console.print(f"[bold]Shipyard demo[/bold] — store: {client.settings.store_uri}")
    shipyard.set_experiment(EXPERIMENT)

    frame = load_breast_cancer(as_frame=True).frame
    data = client.log_dataset(frame, name=DATASET, description="scikit-learn's breast cancer data (569 rows)")
    if not client.list_contracts(DATASET):
        client.set_contract(DATASET, client.infer_contract(data.ref))
    report = client.validate_dataset(data.ref)
    console.print(
        f"  dataset {data.ref} ({data.row_count} rows, {len(data.schema or [])} columns, {data.digest[:19]}…): "
        f"contract {'passed' if report.passed else 'FAILED'} ({len(report.checks)} checks)"
    )

    from shipyard.pipelines import run as run_pipeline

    def show(step: Any) -> None:
        console.print(f"    {step.status.value:<9} {step.name}")

    console.print("  pipeline shipyard.demo.pipeline:training")
    first = run_pipeline("shipyard.demo.pipeline:training", {"dataset": data.ref}, client=client, progress=show)
    console.print("  the same pipeline again: every step comes from the cache")
    again = run_pipeline("shipyard.demo.pipeline:training", {"dataset": data.ref}, client=client, progress=show)
    cached = sum(1 for s in again.steps if s.status.value == "CACHED")
    experiment_id = client.get_experiment(EXPERIMENT).id
    registered = client.load_step_output(first.id, "register")
    version = next(v for v in reversed(client.list_versions(MODEL_NAME)) if v.digest == registered["digest"])
    from shipyard.demo.governance import run_governance, show_audit_trail

    governance = run_governance(client, version.version, console)  # review, approval, then @champion
    # The pipeline run that built this version (on a later demo run, `first` may be all cache hits).
    built_by = client.get_pipeline_run(client.get_step_run_by_run_id(version.source_run_id).pipeline_run_id)
    sweep_run = built_by.step("sweep").run_id
    best = client.search_runs(
        experiments=[experiment_id],
        filter=f"attributes.parent_run_id = '{sweep_run}' and metrics.roc_auc > 0.9",
        order_by=["metrics.roc_auc DESC", "metrics.log_loss ASC"],
        max_results=1,
    ).runs[0]
    parent = client.get_run(sweep_run)
    test = client.load_step_output(built_by.id, "split", "test")
    X_test, y_test = test.drop(columns=[TARGET]), test[TARGET]

    champion = client.load_model(f"models:/{MODEL_NAME}@champion")
    predictions = champion.predict(X_test)
    accuracy = float((predictions == y_test.to_numpy()).mean())

    table = Table(title=f"runs in experiment {EXPERIMENT!r} (best first)")
    for column in ("run", "model", "params", "accuracy", "roc_auc", "log_loss"):
        table.add_column(column)
    ranked = client.search_runs(
        experiments=[experiment_id],
        filter=f"attributes.parent_run_id = '{parent.id}'",
        order_by=["metrics.roc_auc DESC"],
    ).runs
    for run in ranked:
        shown = {k: v for k, v in run.params.items() if k != "model"}
        table.add_row(
            run.id[:8] + (" ★" if run.id == best.id else ""),
            run.params.get("model", ""),
            ", ".join(f"{k}={v}" for k, v in shown.items()),
            f"{run.metrics['accuracy']:.4f}",
            f"{run.metrics['roc_auc']:.4f}",
            f"{run.metrics['log_loss']:.4f}",
        )
    console.print(table)
    console.print(
        f"Registered [bold]{MODEL_NAME}[/bold] version {version.version} "
        f"({version.digest}) and aliased it [bold]champion[/bold]."
    )
    console.print(
        f"Reloaded models:/{MODEL_NAME}@champion (digest verified) and predicted {len(predictions)} "
        f"held-out rows: accuracy {accuracy:.4f}."
    )
    step_run = client.get_step_run_by_run_id(version.source_run_id)
    commit = ((version.environment or {}).get("git") or {}).get("commit")
    console.print(f"Second pipeline run {again.id[:8]}: {cached} of {len(again.steps)} steps served from the cache.")
    console.print("\n[bold]Lineage of the champion[/bold]")
    for line in (
        f"dataset {', '.join(version.data_refs)}  (contract validated: {report.passed})",
        f"→ pipeline run {built_by.id}  ({built_by.name}, definition {built_by.definition_digest[:19]}…, "
        f"params {built_by.params})",
        f"→ step '{step_run.name}'  (code {step_run.code_digest[:19]}…), training run {version.source_run_id}",
        f"→ model version {MODEL_NAME}/{version.version}  ({version.digest[:19]}…, commit {commit or 'none'})",
    ):
        console.print(f"  {line}")
    from shipyard.demo.rollout import ENDPOINT, run_rollouts

    rollouts = run_rollouts(client, test, TARGET, console)
    from shipyard.demo.monitoring import MONITOR, run_monitoring

    monitoring = run_monitoring(client, frame, TARGET, console)
    from shipyard.demo.loop import run_closed_loop

    loop = run_closed_loop(client, X_test, console)
    audit = show_audit_trail(client, version.version, console)
    home_flag = f" --home {client.settings.home}" if home else ""
    console.print("\nWhere to look next:")
    for command in (
        f"shipyard{home_flag} runs list --experiment {EXPERIMENT} --order-by 'metrics.roc_auc DESC'",
        f"shipyard{home_flag} runs search --filter \"metrics.accuracy > 0.95 and params.model = 'logreg'\"",
        f"shipyard{home_flag} versions show {MODEL_NAME} {version.version}",
        f"shipyard{home_flag} aliases history {MODEL_NAME}",
        f"shipyard{home_flag} data show {data.ref}",
        f"shipyard{home_flag} data lineage {data.ref}",
        f"shipyard{home_flag} contracts reports {data.ref}",
        f"shipyard{home_flag} pipeline show {built_by.id}",
        f"shipyard{home_flag} reproduce models:/{MODEL_NAME}@champion",
        f"shipyard{home_flag} deploy history {ENDPOINT}",
        f"shipyard{home_flag} deploy status {ENDPOINT}",
        f"shipyard{home_flag} serve {ENDPOINT}   # then POST http://127.0.0.1:8000/endpoints/{ENDPOINT}/predict",
        f"shipyard{home_flag} monitor windows {MONITOR}",
        f"shipyard{home_flag} monitor alerts",
        f"shipyard{home_flag} monitor report {MONITOR} --window 1d",
        f"shipyard{home_flag} automations list",
        f"shipyard{home_flag} automations firings",
        f"shipyard{home_flag} journal tail --limit 20",
        f"shipyard{home_flag} inventory",
        f"shipyard{home_flag} review status {MODEL_NAME} {version.version}",
        f"shipyard{home_flag} audit log --model {MODEL_NAME} --version {version.version}",
        f"shipyard{home_flag} audit verify-bundle {audit['bundle']}",
        f"shipyard{home_flag} access user create me --role admin --token   # a token for the server",
        f"shipyard{home_flag} server   # API docs at http://127.0.0.1:8080/docs",
        "shipyard --uri http://127.0.0.1:8080 login   # paste the token; then any command with --uri",
    ):
        console.print(f"  {command}")
    shipyard.set_client(None)
    client.close()
    return {
        "experiment_id": experiment_id,
        "parent_run_id": parent.id,
        "best_run_id": best.id,
        "model": MODEL_NAME,
        "version": version.version,
        "digest": version.digest,
        "champion_accuracy": accuracy,
        "runs": len(ranked),
        "dataset": data.ref,
        "data_refs": version.data_refs,
        "pipeline_run_id": built_by.id,
        "cached_steps": cached,
        **{f"deploy_{k}": v for k, v in rollouts.items()},
        **{f"monitor_{k}": v for k, v in monitoring.items()},
        **{f"loop_{k}": v for k, v in loop.items()},
        **{f"governance_{k}": v for k, v in governance.items()},
        **{f"audit_{k}": v for k, v in audit.items()},
    }
