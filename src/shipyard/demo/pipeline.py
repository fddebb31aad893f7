"""The demo's training pipeline: validate the registered data, split it, train a sweep, register the best.

Importable as ``shipyard.demo.pipeline:training``, so the scheduler and ``shipyard reproduce`` can
run it again. Every step is deterministic (fixed seeds, single-threaded estimators), so a re-run
produces a bit-identical model.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

import shipyard
from shipyard.pipelines import pipeline, step
from shipyard.pipelines.refs import DatasetRef

MODEL_NAME = "breast-cancer-classifier"
TARGET = "target"


def candidates() -> list[tuple[str, Any, dict[str, Any]]]:
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


def evaluate(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    proba = model.predict_proba(X)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "log_loss": float(log_loss(y, proba)),
    }


@step
def validate(data: DatasetRef) -> dict:
    """The gate: the data must satisfy the dataset's contract, or the pipeline stops here with the report."""
    from shipyard.data.validation import check

    report = check(data.ref, contract=data.ref.split("@")[0])
    return {"passed": report.passed, "checks": len(report.checks), "rows": report.row_count}


@step(outputs=["train", "test"])
def split(data: DatasetRef, gate: dict, test_size: float = 0.25, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    frame = data.load()
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[TARGET])
    return train.reset_index(drop=True), test.reset_index(drop=True)


@step
def sweep(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Train every candidate as a nested run (params, metrics, learning curve, model); return the best."""
    from sklearn.metrics import log_loss

    X_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
    X_test, y_test = test.drop(columns=[TARGET]), test[TARGET]
    results = []
    for label, model, params in candidates():
        run_name = "-".join([label, *(f"{k}{v}" for k, v in params.items() if k not in ("model", "n_estimators"))])
        with shipyard.start_run(name=run_name, nested=True):
            shipyard.log_params(params)
            model.fit(X_train, y_train)
            if hasattr(model, "staged_predict_proba"):  # a learning curve, one point per boosting stage
                for stage, proba in enumerate(model.staged_predict_proba(X_test)):
                    shipyard.log_metric("test_log_loss", float(log_loss(y_test, proba[:, 1])), step=stage)
            metrics = evaluate(model, X_test, y_test)
            shipyard.log_metrics(metrics)
            results.append({"label": label, "params": params, **metrics})
    best = max(results, key=lambda r: (r["roc_auc"], -r["log_loss"]))
    return {"best": best, "all": results}


@step
def register(train: pd.DataFrame, test: pd.DataFrame, selection: dict) -> dict:
    """Refit the winning configuration and register it: the version's lineage is this pipeline run."""
    best = selection["best"]
    model = next(m for label, m, params in candidates() if params == best["params"])
    X_train, y_train = train.drop(columns=[TARGET]), train[TARGET]
    model.fit(X_train, y_train)
    metrics = evaluate(model, test.drop(columns=[TARGET]), test[TARGET])
    shipyard.log_params({"selected": best["label"], **{f"selected.{k}": v for k, v in best["params"].items()}})
    shipyard.log_metrics(metrics)
    version = shipyard.register_model(
        model,
        MODEL_NAME,
        input_example=X_train.head(5),  # gives the version a signature, so servers validate requests
        description=f"best of the demo sweep by ROC AUC ({best['label']} {best['params']})",
    )
    # The version number is left out on purpose: outputs are compared by `shipyard reproduce`, and a
    # reproduction registers nothing.
    return {"digest": version.digest, **metrics}


@pipeline(experiment="breast-cancer")
def training(dataset: str = "breast-cancer@1", test_size: float = 0.25, seed: int = 42):
    data = DatasetRef(dataset)
    gate = validate(data)
    parts = split(data, gate, test_size=test_size, seed=seed)
    selection = sweep(parts.train, parts.test)
    register(parts.train, parts.test, selection)


@step
def refit(base: str, fresh: str, seed: int = 42) -> dict:
    """Refit the champion's configuration on the training data plus the labelled production rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    old, new = shipyard.load_dataset(base), shipyard.load_dataset(fresh)
    frame = pd.concat([old, new[old.columns]], ignore_index=True)
    train, test = train_test_split(frame, test_size=0.25, random_state=seed, stratify=frame[TARGET])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(train.drop(columns=[TARGET]), train[TARGET])
    metrics = evaluate(model, test.drop(columns=[TARGET]), test[TARGET])
    shipyard.log_metrics(metrics)
    version = shipyard.register_model(
        model,
        MODEL_NAME,
        input_example=train.drop(columns=[TARGET]).head(5),
        data_refs=[base, fresh],
        description=f"retrained on {base} + {fresh} (production rows with labels)",
    )
    return {"version": version.version, "rows": len(frame), **metrics}


@pipeline(experiment="breast-cancer")
def retraining(dataset: str = "", base: str = "breast-cancer@1", seed: int = 42):
    """What the demo's drift alert launches: ``dataset`` is the drifted window's labelled rows."""
    refit(base, dataset, seed)
