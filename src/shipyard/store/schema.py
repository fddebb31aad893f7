"""The relational schema of the metadata store, as SQLAlchemy Core tables.

Core (not the ORM) because the hot paths — metric points, search — are bulk inserts and
hand-shaped queries. Times are integer milliseconds since the epoch (UTC). Every table is
created by an Alembic migration in ``store/migrations/versions``; change both together.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Id = sa.String(32)
Time = sa.BigInteger

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("experiment_id", Id, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("parent_run_id", Id, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("user", sa.String(250), nullable=False),
    sa.Column("start_time", Time, nullable=False),
    sa.Column("end_time", Time, nullable=True),
    sa.Column("lifecycle", sa.String(16), nullable=False, server_default="active"),
    sa.Column("environment", sa.JSON, nullable=True),
    sa.Index(None, "experiment_id", "start_time"),
    sa.Index(None, "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key"),
)

# Tags of every entity kind live in one table so one code path sets, deletes and filters them.
tags = sa.Table(
    "tags",
    metadata,
    sa.Column("entity_type", sa.String(32), primary_key=True),
    sa.Column("entity_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "entity_type", "key"),
)

# Every metric point. NaN is stored as value NULL + is_nan, because SQLite turns NaN into NULL.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float(precision=53), nullable=True),
    sa.Column("is_nan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", Time, nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

# The last value of each metric of each run (highest step, then latest time): what search filters
# and orders on, so a search never scans the raw points.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float(precision=53), nullable=True),
    sa.Column("is_nan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", Time, nullable=False),
    sa.Index(None, "key", "value"),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", Id, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("is_tree", sa.Boolean, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("risk_tier", sa.String(16), nullable=True),  # governance: low | medium | high (policies select on it)
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("model_id", Id, sa.ForeignKey("registered_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("flavor", sa.String(64), nullable=False),
    sa.Column("source_run_id", Id, sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("source_uri", sa.String(1000), nullable=True),
    sa.Column("signature", sa.JSON, nullable=True),
    sa.Column("input_example", sa.JSON, nullable=True),
    sa.Column("code_commit", sa.String(64), nullable=True),
    sa.Column("environment", sa.JSON, nullable=True),
    sa.Column("data_refs", sa.JSON, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="READY"),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    # governance lifecycle: draft -> in_review -> approved | rejected -> deployed -> retired
    sa.Column("stage", sa.String(16), nullable=False, server_default="draft"),
    sa.UniqueConstraint("model_id", "version"),
    sa.Index(None, "digest"),
    sa.Index(None, "source_run_id"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", Id, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# The journal: one row per state change, appended in the same transaction as the change.
journal = sa.Table(
    "journal",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", Time, nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(300), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("hash", sa.String(64), nullable=True),  # the hash chain (store/chain.py)
    sa.Index(None, "entity_type", "entity_id"),
)

# --------------------------------------------------------------------------------------------------
# Datasets: named, numbered, immutable versions; a version's identity is its tree digest.

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),  # tree digest of the files
    sa.Column("format", sa.String(32), nullable=False),  # parquet, csv, json, files, ...
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=True),
    sa.Column("schema", sa.JSON, nullable=True),
    sa.Column("profile", sa.JSON, nullable=True),
    sa.Column("source_uri", sa.String(1000), nullable=True),
    sa.Column("parents", sa.JSON, nullable=True),  # list of dataset version ids
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("dataset_id", "version"),
    sa.Index(None, "digest"),
    sa.Index(None, "dataset_id", "created_at"),
)

# Which dataset versions a run, pipeline run, step run or model version read (input) or wrote
# (output): the edges of the lineage graph around data.
data_usages = sa.Table(
    "data_usages",
    metadata,
    sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    sa.Column("consumer_type", sa.String(32), primary_key=True),
    sa.Column("consumer_id", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "consumer_type", "consumer_id"),
)

# Data contracts: versioned per dataset; the spec is the parsed YAML document.
data_contracts = sa.Table(
    "data_contracts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("dataset_id", "version"),
)

validation_reports = sa.Table(
    "validation_reports",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id"), nullable=False),
    sa.Column("contract_id", Id, sa.ForeignKey("data_contracts.id"), nullable=True),
    sa.Column("contract_digest", sa.String(71), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "dataset_version_id", "created_at"),
)

# --------------------------------------------------------------------------------------------------
# Pipelines: a definition is identified by the digest of its DAG and step code; runs record steps.

pipeline_definitions = sa.Table(
    "pipeline_definitions",
    metadata,
    sa.Column("digest", sa.String(71), primary_key=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "name"),
)

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("definition_digest", sa.String(71), sa.ForeignKey("pipeline_definitions.digest"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("executor", sa.String(32), nullable=False),
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=True),  # the tracking run of the pipeline run
    sa.Column("schedule_id", Id, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("start_time", Time, nullable=False),
    sa.Column("end_time", Time, nullable=True),
    # Liveness of the runner: "host:pid" and its last heartbeat, so a killed runner's run is marked FAILED.
    sa.Column("owner", sa.String(250), nullable=True),
    sa.Column("heartbeat_at", Time, nullable=True),
    sa.Index(None, "name", "start_time"),
    sa.Index(None, "run_id"),
    sa.Index(None, "status"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("pipeline_run_id", Id, sa.ForeignKey("pipeline_runs.id"), nullable=False),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("code_digest", sa.String(71), nullable=False),
    sa.Column("cache_key", sa.String(71), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cached_from", Id, nullable=True),  # the step run whose outputs were reused
    sa.Column("run_id", Id, sa.ForeignKey("runs.id"), nullable=True),  # the tracking run the step logged to
    sa.Column("inputs", sa.JSON, nullable=True),
    sa.Column("outputs", sa.JSON, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("logs_digest", sa.String(71), nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("start_time", Time, nullable=True),
    sa.Column("end_time", Time, nullable=True),
    sa.UniqueConstraint("pipeline_run_id", "name"),
    sa.Index(None, "cache_key", "status"),
    sa.Index(None, "run_id"),
)

pipeline_schedules = sa.Table(
    "pipeline_schedules",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("target", sa.String(500), nullable=False),  # "package.module:pipeline_function"
    sa.Column("cron", sa.String(120), nullable=False),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("catchup", sa.String(16), nullable=False),  # skip | latest | all
    sa.Column("executor", sa.String(32), nullable=False, server_default="inprocess"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("next_run_at", Time, nullable=False),
    sa.Column("last_run_at", Time, nullable=True),
    sa.Column("last_pipeline_run_id", Id, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# --------------------------------------------------------------------------------------------------
# Prediction log: served predictions live in append-only Parquet segments in the artifact store;
# one row per segment says which endpoint and model version it holds and what time it spans.

prediction_segments = sa.Table(
    "prediction_segments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("endpoint", sa.String(250), nullable=False),
    sa.Column("model_name", sa.String(250), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),  # the Parquet object
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("first_ts", Time, nullable=False),
    sa.Column("last_ts", Time, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "endpoint", "first_ts"),
    sa.Index(None, "model_name", "model_version"),
)

# --- endpoints and deployments (serving) --------------------------------------------------------

# An endpoint is a name the inference server answers to. It serves its stable version unless a
# deployment is active; ``revision`` grows with every change so serving replicas notice by polling one int.
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("model_name", sa.String(250), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("deployment_id", Id, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("endpoint", sa.String(250), sa.ForeignKey("endpoints.name"), nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("baseline_model", sa.String(250), nullable=False),
    sa.Column("baseline_version", sa.Integer, nullable=False),
    sa.Column("baseline_digest", sa.String(71), nullable=False),
    sa.Column("candidate_model", sa.String(250), nullable=False),
    sa.Column("candidate_version", sa.Integer, nullable=False),
    sa.Column("candidate_digest", sa.String(71), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("weight", sa.Float, nullable=False),  # the candidate's share of live traffic
    sa.Column("step_started_at", Time, nullable=True),
    sa.Column("next_judgement_at", Time, nullable=True),
    sa.Column("replicas", sa.JSON, nullable=False),  # rolling: {"batch": [...], "done": [...]}
    sa.Column("judgements", sa.JSON, nullable=False),  # every verdict, with its evidence
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("finished_at", Time, nullable=True),
    sa.Index(None, "endpoint", "created_at"),
)

# One row per serving replica (worker process) and endpoint: what it runs, heard from by heartbeat.
serving_replicas = sa.Table(
    "serving_replicas",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("endpoint", sa.String(250), primary_key=True),
    sa.Column("host", sa.String(250), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),  # the endpoint revision it has applied
    sa.Column("serving", sa.JSON, nullable=False),  # digests it routes traffic to
    sa.Column("versions", sa.JSON, nullable=False),  # digest -> "loading" | "ready" | "failed: ..."
    sa.Column("started_at", Time, nullable=False),
    sa.Column("heartbeat_at", Time, nullable=False),
    sa.Index(None, "endpoint", "heartbeat_at"),
)

# Live-traffic observations per deployment step, variant and replica (cumulative; replaced on each flush).
deployment_samples = sa.Table(
    "deployment_samples",
    metadata,
    sa.Column("deployment_id", Id, primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("variant", sa.String(32), primary_key=True),
    sa.Column("replica_id", sa.String(64), primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("latencies", sa.JSON, nullable=False),  # a reservoir sample, ms
    sa.Column("predictions", sa.JSON, nullable=False),  # a reservoir sample of predicted values
    sa.Column("compared", sa.BigInteger, nullable=False),  # shadow: answers compared with the primary's
    sa.Column("agreed", sa.BigInteger, nullable=False),
    sa.Column("abs_diff", sa.Float, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# Which variant answered each prediction of a deployment, so feedback can be attributed to it.
routed_predictions = sa.Table(
    "routed_predictions",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("deployment_id", Id, nullable=False),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("ts", Time, nullable=False),
    sa.Index(None, "deployment_id", "variant"),
)

# Business metrics and ground truth reported for a prediction id; one value per id and metric.
prediction_feedback = sa.Table(
    "prediction_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("metric", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# -- monitoring ------------------------------------------------------------------------------------

# A monitor watches one endpoint's (or one model's batch-logged) predictions against a reference.
monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("endpoint", sa.String(250), nullable=True),
    sa.Column("model", sa.String(250), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),  # None: every version the source logged
    sa.Column("task", sa.String(16), nullable=False),  # classification | regression
    sa.Column("reference", sa.JSON, nullable=False),  # what the reference is, as resolved
    sa.Column("window", sa.JSON, nullable=False),  # {"kind": "time", "ms": ...} | {"kind": "count", "rows": N}
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("segment_by", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("bins", sa.JSON, nullable=False),  # reference bins, fixed at creation
    sa.Column("reference_profile", sa.JSON, nullable=False),
    sa.Column("schedule_seconds", sa.Float, nullable=True),
    sa.Column("cursor", sa.JSON, nullable=False),  # where the next window starts
    sa.Column("last_run_at", Time, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# One computed window of a monitor (and segment): the mergeable profile and every metric.
monitor_windows = sa.Table(
    "monitor_windows",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("monitor_id", Id, sa.ForeignKey("monitors.id"), nullable=False),
    sa.Column("segment", sa.String(250), nullable=False),  # "" for all rows, else "column=value"
    sa.Column("start", Time, nullable=False),
    sa.Column("end", Time, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("labelled", sa.BigInteger, nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("computed_at", Time, nullable=False),
    sa.UniqueConstraint("monitor_id", "segment", "start", "end"),
)

# Ground truth by prediction id, accepted whenever it arrives; one label per id (resending replaces).
prediction_labels = sa.Table(
    "prediction_labels",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),  # JSON of the label (a class or a number)
    sa.Column("matched", sa.Boolean, nullable=False),  # a logged prediction has this id (checked again later)
    sa.Column("received_at", Time, nullable=False),
    sa.Index(None, "received_at"),
    sa.Index(None, "matched"),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("monitor_id", Id, sa.ForeignKey("monitors.id"), nullable=False),
    sa.Column("metric", sa.String(250), nullable=False),
    sa.Column("condition", sa.JSON, nullable=False),
    sa.Column("window", sa.JSON, nullable=True),  # None: the monitor's own window
    sa.Column("min_samples", sa.Integer, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(250), nullable=True),
    sa.Column("runbook", sa.Text, nullable=True),
    sa.Column("fire_after", sa.Integer, nullable=False),  # consecutive breaching windows to fire
    sa.Column("resolve_after", sa.Integer, nullable=False),  # consecutive clear windows to resolve
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("trigger", sa.JSON, nullable=True),  # {"pipeline": target, "params": {...}}
    sa.Column("state", sa.JSON, nullable=False),  # hysteresis counters and the last evaluated window
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("rule_id", Id, sa.ForeignKey("alert_rules.id"), nullable=False),
    sa.Column("monitor_id", Id, sa.ForeignKey("monitors.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # firing | acknowledged | resolved
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("metric", sa.String(250), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.JSON, nullable=False),
    sa.Column("window_start", Time, nullable=False),
    sa.Column("window_end", Time, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("notifications", sa.JSON, nullable=False),
    sa.Column("pipeline_run_id", Id, nullable=True),
    sa.Column("trigger_error", sa.Text, nullable=True),
    sa.Column("fired_at", Time, nullable=False),
    sa.Column("acknowledged_at", Time, nullable=True),
    sa.Column("acknowledged_by", sa.String(250), nullable=True),
    sa.Column("resolved_at", Time, nullable=True),
    sa.Index(None, "monitor_id", "status"),
)

# -- identity and access ---------------------------------------------------------------------------

# A user or a service account. Groups are free-form names approval rules can require.
principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # user | service
    sa.Column("groups", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("disabled_at", Time, nullable=True),
)

# API tokens: only a salted hash of the secret is stored; the token is shown once, at creation.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the public part of the token
    sa.Column("principal_id", Id, sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(128), nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=True),
    sa.Column("revoked_at", Time, nullable=True),
    sa.Column("last_used_at", Time, nullable=True),
    sa.Index(None, "principal_id"),
)

# A role held globally (scope_type "global", scope "") or on one registered model or experiment.
role_grants = sa.Table(
    "role_grants",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("principal_id", Id, sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | developer | reviewer | deployer | admin
    sa.Column("scope_type", sa.String(16), nullable=False),  # global | model | experiment
    sa.Column("scope", sa.String(250), nullable=False),  # "" | model name | experiment id
    sa.Column("granted_by", sa.String(250), nullable=True),
    sa.Column("granted_at", Time, nullable=False),
    sa.UniqueConstraint("principal_id", "role", "scope_type", "scope"),
)

# Aliases only a role may move, and only to a version in a given lifecycle stage ("*" = every model).
protected_aliases = sa.Table(
    "protected_aliases",
    metadata,
    sa.Column("model", sa.String(250), primary_key=True),
    sa.Column("alias", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("require_stage", sa.String(16), nullable=True),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
)

# -- governance: reviews, policies, evaluations, model cards ---------------------------------------

# One reviewer's decision on a version, bound to the tree digest it was made on.
version_reviews = sa.Table(
    "version_reviews",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("reviewer", sa.String(250), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # approve | reject
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "version_id"),
)

# Policies as code: YAML text, versioned per name like everything else in the store.
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),  # the parsed, validated YAML
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("name", "version"),
)

# Every policy evaluation at a gate, with each rule's measured value and threshold.
policy_decisions = sa.Table(
    "policy_decisions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("gate", sa.String(16), nullable=False),  # review | approve | deploy | alias | check
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("results", sa.JSON, nullable=False),  # [{policy, policy_version, rule, passed, value, threshold, ...}]
    sa.Column("override", sa.Boolean, nullable=False),
    sa.Column("justification", sa.Text, nullable=True),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "version_id"),
)

# Results computed about a version: fairness, explanations, evaluations with slices, reproducibility.
version_evaluations = sa.Table(
    "version_evaluations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("version_id", Id, sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # fairness | explanation | evaluation | reproducibility
    sa.Column("dataset", sa.String(300), nullable=True),  # NAME@N the result was computed on
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "version_id", "kind"),
)

# Editable narrative sections of a model card; version 0 holds the model-wide text.
model_card_sections = sa.Table(
    "model_card_sections",
    metadata,
    sa.Column("model_id", Id, sa.ForeignKey("registered_models.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("section", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(250), nullable=True),
    sa.Column("updated_at", Time, nullable=False),
)

# -- integrity: signing keys, signatures, signed journal checkpoints -------------------------------

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),  # hex SHA-256 of the raw public key, first 16 bytes
    sa.Column("owner", sa.String(250), nullable=False),  # "server" or a principal name
    sa.Column("public_key", sa.String(100), nullable=False),  # base64 of the 32 raw ed25519 bytes
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time, nullable=True),
)

artifact_signatures = sa.Table(
    "artifact_signatures",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subject_type", sa.String(32), nullable=False),  # model_version
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("key_id", sa.String(64), sa.ForeignKey("signing_keys.key_id"), nullable=False),
    sa.Column("signer", sa.String(250), nullable=False),
    sa.Column("signature", sa.String(200), nullable=False),  # base64
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "subject_type", "subject_id"),
)

# A signed statement "the journal up to seq had this head hash", exportable to outside parties.
journal_checkpoints = sa.Table(
    "journal_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64), sa.ForeignKey("signing_keys.key_id"), nullable=False),
    sa.Column("signature", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# -- privacy: retention and erasure ----------------------------------------------------------------

retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("target", sa.String(32), primary_key=True),  # predictions | feedback | labels
    sa.Column("max_age_ms", sa.BigInteger, nullable=False),
    sa.Column("last_enforced_at", Time, nullable=True),
    sa.Column("updated_by", sa.String(250), nullable=True),
    sa.Column("updated_at", Time, nullable=False),
)

# What an erasure did, never what it erased: the subject's key (not its value) and counts.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("subject_key", sa.String(250), nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),  # rows removed per target, new dataset versions, flagged models
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# -- events: subscribers of the journal with their cursors, webhook dead letters -------------------

# A subscriber reads the journal as events after its own cursor (the last acknowledged seq). A
# webhook is a subscriber with a URL and a signing secret, delivered by `shipyard events run`.
event_subscribers = sa.Table(
    "event_subscribers",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # handler | webhook
    sa.Column("actions", sa.JSON, nullable=False),  # exact actions or prefixes ending in '.'; [] = all
    sa.Column("entity_types", sa.JSON, nullable=False),  # [] = all
    sa.Column("cursor", sa.BigInteger, nullable=False),  # the last acknowledged journal seq
    sa.Column("url", sa.String(2000), nullable=True),
    sa.Column("secret", sa.String(200), nullable=True),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# Events a webhook could not deliver after its last attempt; `replay` re-sends and removes them.
event_dead_letters = sa.Table(
    "event_dead_letters",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subscriber", sa.String(250), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "subscriber", "seq"),
)

# Sequence numbers a subscriber has processed, for handlers that make their effects idempotent.
event_processed = sa.Table(
    "event_processed",
    metadata,
    sa.Column("subscriber", sa.String(250), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("processed_at", Time, nullable=False),
)

# Automation rules (docs/automations.md): one row per rule with its current version and switch ...
automations = sa.Table(
    "automations",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),  # the current (newest) version
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

# ... and every version of its YAML, kept: a firing names the version that fired.
automation_versions = sa.Table(
    "automation_versions",
    metadata,
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),  # the parsed rule
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(250), nullable=True),
    sa.Column("created_at", Time, nullable=False),
)

# One row per (rule, event seq, action): the unique key makes a redelivered event a no-op.
automation_firings = sa.Table(
    "automation_firings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(250), nullable=False),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),  # the event that fired the rule
    sa.Column("event_action", sa.String(250), nullable=False),
    sa.Column("action_index", sa.Integer, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # run_pipeline | evaluate | ... | notify
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time, nullable=True),
    sa.UniqueConstraint("rule", "seq", "action_index"),
    sa.Index(None, "started_at"),
)
