"""Erasure reaches the rows an explanation copied as its background sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from shipyard import Client


def test_erasure_drops_backgrounds_drawn_from_purged_data(client: Client) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"customer": [f"cust-{i:06d}" for i in range(300)], "x1": rng.normal(size=300)})
    frame["x2"] = rng.normal(size=300)
    frame["y"] = (frame.x1 + frame.x2 > 0).astype(int)
    data = client.log_dataset(frame, name="customers")
    model = LogisticRegression().fit(frame[["x1", "x2"]], frame.y)
    version = client.register_model(model, "scorer", data_refs=[data.ref], input_example=frame[["x1", "x2"]].head(3))
    client.explain_version("scorer", version.version, data.ref, label_column="y", n_repeats=2)
    stored = client.get_evaluation("scorer", version.version, "explanation")
    assert len(stored.result["background"]) == 100

    erasure = client.erase_subject({"customer": "cust-000007"})
    after = client.get_evaluation("scorer", version.version, "explanation")
    assert after.result["background"] == [] and after.result["background_erased_by"] == erasure.id
    assert after.result["importances"] == stored.result["importances"]  # the global explanation stays
    entries = client.read_journal(after=0, action="evaluation.erased")
    assert [e.payload["kind"] for e in entries] == ["explanation"]
    assert all("cust-000007" not in str(e) for e in client.read_journal(after=0, limit=10_000))
    # local explanations go on, against an unpurged background (the dataset's new version)
    local = client.explain_prediction("scorer", version.version, {"x1": 1.0, "x2": -0.5})
    assert local.contributions and "customers@1" not in local.background
