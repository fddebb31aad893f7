"""``shipyard demo``: the main job — a small, real model lifecycle, end to end, on the embedded store.

Trains several classifiers on scikit-learn's bundled breast-cancer data set, tracks every run
(params, per-step metrics, the model), finds the best run with a search query, registers its
model, points the ``champion`` alias at it, loads the champion back by alias and predicts with
it. Later capabilities (datasets, pipelines, deployments, monitoring, governance) extend this
script; keep it readable top to bottom.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.table import Table

EXPERIMENT = "breast-cancer"
MODEL_NAME = "breast-cancer-classifier"


def _candidates() -> list[tuple[str, Any, dict[str, Any]]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    found: list[tuple[str, Any, dict[str, Any]]] = []
    for c in (0.01, 0.1, 1.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        found.append(("logreg", model, {"model": "logreg", "C": c}))
    for depth in (3, 8):
        model = RandomForestClassifier(n_estimators=100, max_depth=depth, random_state=7, n_jobs=1)
        found.append(("forest", model, {"model": "forest", "max_depth": depth, "n_estimators": 100}))
    model = GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=7)
    found.append(("boosting", model, {"model": "boosting", "max_depth": 2, "n_estimators": 60}))
    return found


def _evaluate(model: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    proba = model.predict_proba(X)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "log_loss": float(log_loss(y, proba)),
    }


def run_demo(home: str | os.PathLike[str] | None = None, console: Console | None = None) -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    import shipyard
    from shipyard import Client

    console = console or Console()
    client = Client(home=home)
    shipyard.set_client(client)
    console.print(f"[bold]Shipyard demo[/bold] — store: {client.settings.store_uri}")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42, stratify=y)
    experiment_id = shipyard.set_experiment(EXPERIMENT)

    with shipyard.start_run(name="model-selection") as parent:
        shipyard.set_seed(42)
        shipyard.log_params({"test_size": 0.25, "rows": len(X), "features": X.shape[1]})
        for label, model, params in _candidates():
            run_name = "-".join([label, *(f"{k}{v}" for k, v in params.items() if k not in ("model", "n_estimators"))])
            with shipyard.start_run(name=run_name, nested=True):
                shipyard.log_params(params)
                model.fit(X_train, y_train)
                if hasattr(model, "staged_predict_proba"):  # a learning curve, one point per boosting stage
                    from sklearn.metrics import log_loss

                    for step, proba in enumerate(model.staged_predict_proba(X_test)):
                        shipyard.log_metric("test_log_loss", float(log_loss(y_test, proba[:, 1])), step=step)
                shipyard.log_metrics(_evaluate(model, X_test, y_test))
                shipyard.log_model(model, input_example=X_train.head(5))
                console.print(f"  trained {label:<9} {params}")

    best = client.search_runs(
        experiments=[experiment_id],
        filter=f"attributes.parent_run_id = '{parent.id}' and metrics.roc_auc > 0.9",
        order_by=["metrics.roc_auc DESC", "metrics.log_loss ASC"],
        max_results=1,
    ).runs[0]
    version = client.register_model(
        f"runs:/{best.id}/model", MODEL_NAME, description=f"best of the demo sweep by ROC AUC (run {best.id})"
    )
    client.set_alias(MODEL_NAME, "champion", version.version)

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
    home_flag = f" --home {client.settings.home}" if home else ""
    console.print("\nWhere to look next:")
    for command in (
        f"shipyard{home_flag} runs list --experiment {EXPERIMENT} --order-by 'metrics.roc_auc DESC'",
        f"shipyard{home_flag} runs search --filter \"metrics.accuracy > 0.95 and params.model = 'logreg'\"",
        f"shipyard{home_flag} versions show {MODEL_NAME} {version.version}",
        f"shipyard{home_flag} aliases history {MODEL_NAME}",
        f"shipyard{home_flag} journal tail --limit 20",
        f"shipyard{home_flag} server   # then open http://127.0.0.1:8080/docs",
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
    }
