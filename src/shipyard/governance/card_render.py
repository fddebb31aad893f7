"""Render a :class:`ModelCard` as Markdown, self-contained HTML, or JSON in the Model Card Toolkit's sections.

Markdown and HTML come from one list of blocks (headings, paragraphs, key-value and grid tables), so
the two always say the same thing. HTML escapes everything (narrative text included) and carries its
own small stylesheet: no scripts, no external resources. JSON follows the Model Card Toolkit schema
(``model_details``, ``model_parameters``, ``quantitative_analysis``, ``considerations`` with
``users``, ``use_cases``, ``limitations``, ``tradeoffs``, ``ethical_considerations``), with what the
toolkit has no place for (approvals, signatures, fairness groups, explanations, completeness) under
``shipyard``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from shipyard.governance.evaluation_entities import ModelCard, VersionEvaluation

Block = tuple[Any, ...]  # ("h1"|"h2"|"h3"|"p"|"text", str) | ("kv", [(k, v)]) | ("grid", headers, rows)
NOT_DOCUMENTED = "Not documented yet."
MAX_SLICE_ROWS = 20


def render(card: ModelCard, format: str) -> str:
    if format == "json":
        return json.dumps(toolkit_json(card), indent=2, sort_keys=False, default=str, ensure_ascii=False) + "\n"
    blocks = card_blocks(card)
    return to_markdown(blocks) if format == "markdown" else to_html(blocks, _title(card))


def _title(card: ModelCard) -> str:
    return f"Model card: {card.model_details.name} version {card.model_details.version}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ci(interval: Any) -> str:
    return "-" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


# --------------------------------------------------------------------------------------------------
# the blocks


def card_blocks(card: ModelCard) -> list[Block]:
    d = card.model_details
    s = card.sections
    blocks: list[Block] = [("h1", _title(card))]
    if s.get("overview"):
        blocks.append(("text", s["overview"]))
    blocks += [
        ("h2", "Model details"),
        (
            "kv",
            [
                ("name", d.name),
                ("version", d.version),
                ("uri", d.uri),
                ("digest", d.digest),
                ("flavor", d.flavor),
                ("description", d.description or d.model_description or "-"),
                ("owners", ", ".join(d.owners) or "-"),
                ("created by", d.created_by or "-"),
                ("created at", _when(d.created_at)),
                ("risk tier", d.risk_tier or "-"),
                ("stage", d.stage),
                ("aliases", ", ".join(d.aliases) or "-"),
                ("source run", d.source_run_id or "-"),
                ("code commit", d.code_commit or "-"),
            ],
        ),
    ]
    blocks += _narrative(s, "intended_use", "Intended use")
    for key, title in (("users", "Users"), ("use_cases", "Use cases"), ("out_of_scope", "Out of scope")):
        if s.get(key):
            blocks += [("h3", title), ("text", s[key])]
    blocks += _training(card)
    blocks += _evaluation(card)
    blocks += _fairness(card.fairness)
    blocks += _explanation(card.explanation)
    blocks += _narrative(s, "limitations", "Limitations")
    if s.get("tradeoffs"):
        blocks += [("h2", "Trade-offs"), ("text", s["tradeoffs"])]
    blocks += _narrative(s, "ethical_considerations", "Ethical considerations")
    if s.get("caveats"):
        blocks += [("h2", "Caveats and recommendations"), ("text", s["caveats"])]
    blocks += [("h2", "Approvals"), ("p", f"Lifecycle stage: {d.stage}.")]
    if card.reviews:
        rows = [[r.reviewer, r.decision, _when(r.created_at), r.digest[:19], r.comment or ""] for r in card.reviews]
        blocks.append(("grid", ["reviewer", "decision", "when", "digest", "comment"], rows))
    else:
        blocks.append(("p", "No reviews yet."))
    blocks.append(("h2", "Signatures"))
    if card.signatures:
        rows = [[x.signer, x.key_id, x.digest[:19], _when(x.created_at)] for x in card.signatures]
        blocks.append(("grid", ["signer", "key", "digest", "when"], rows))
    else:
        blocks.append(("p", "Not signed."))
    c = card.completeness
    blocks += [
        ("h2", "Completeness"),
        (
            "p",
            f"{'Complete' if c.complete else 'Incomplete'} (score {c.score:.2f})"
            + (f"; missing: {', '.join(c.missing)}." if c.missing else "."),
        ),
        ("p", f"Generated {_when(card.generated_at)} from the Shipyard store."),
    ]
    return blocks


def _narrative(sections: dict[str, str], key: str, title: str) -> list[Block]:
    return [("h2", title), ("text", sections[key]) if sections.get(key) else ("p", NOT_DOCUMENTED)]


def _training(card: ModelCard) -> list[Block]:
    blocks: list[Block] = [("h2", "Training data")]
    if not card.training_data:
        return [*blocks, ("p", "No training dataset recorded in the version's lineage.")]
    for ds in card.training_data:
        blocks.append(("h3", ds.ref))
        if ds.error:
            blocks.append(("p", f"Unavailable: {ds.error}"))
            continue
        blocks.append(("kv", [("rows", _num(ds.row_count)), ("digest", ds.digest or "-")]))
        rows = []
        for col in ds.columns:
            summary = ", ".join(
                f"{k} {_num(col[k])}" for k in ("missing", "distinct", "min", "mean", "max") if k in col
            )
            if col.get("top"):
                summary += ("; " if summary else "") + "top " + ", ".join(map(str, col["top"]))
            rows.append([col.get("name"), col.get("type"), col.get("kind") or "-", summary])
        if rows:
            blocks.append(("grid", ["column", "type", "kind", "profile"], rows))
    return blocks


def _evaluation(card: ModelCard) -> list[Block]:
    blocks: list[Block] = [("h2", "Evaluation")]
    if card.run_metrics:
        blocks += [("h3", "Training run metrics"), ("kv", [(k, _num(v)) for k, v in card.run_metrics.items()])]
    ev = card.evaluation
    if ev is not None:
        blocks += [
            ("h3", f"Evaluation on {ev.dataset}"),
            (
                "p",
                f"{ev.result.get('task', '')} on {ev.result.get('rows', '?')} rows, by {ev.created_by} at "
                f"{_when(ev.created_at)}; label column {ev.result.get('label_column')}.",
            ),
            ("kv", [(k, _num(v)) for k, v in ev.metrics.items() if v is not None]),
        ]
        for column, values in (ev.result.get("slices") or {}).items():
            names = [k for k in next(iter(values.values()), {}) if k != "count"]
            shown = [n for n in names if any(v.get(n) is not None for v in values.values())][:6]
            rows = [
                [value, figures.get("count"), *[_num(figures.get(n)) for n in shown]]
                for value, figures in list(values.items())[:MAX_SLICE_ROWS]
            ]
            blocks += [("h3", f"Slices by {column}"), ("grid", [column, "count", *shown], rows)]
    if not card.run_metrics and ev is None:
        blocks.append(("p", "No metrics recorded: log metrics in the source run or evaluate the version."))
    return blocks


def _fairness(ev: VersionEvaluation | None) -> list[Block]:
    blocks: list[Block] = [("h2", "Fairness")]
    if ev is None:
        return [*blocks, ("p", "No fairness evaluation yet.")]
    r = ev.result
    m = ev.metrics
    blocks.append(
        (
            "p",
            f"On {ev.dataset}, sensitive features {', '.join(r.get('sensitive_features') or [])}, positive label "
            f"{r.get('positive_label')}, reference group {r.get('reference_group')}; groups under "
            f"{r.get('min_group_size')} rows are flagged small and not judged.",
        )
    )
    rows = [
        [
            g["group"] + (" (small)" if g.get("small") else ""),
            g["size"],
            f"{_num(g.get('selection_rate'))} {_ci(g.get('selection_rate_ci'))}",
            f"{_num(g.get('tpr'))} {_ci(g.get('tpr_ci'))}",
            f"{_num(g.get('fpr'))} {_ci(g.get('fpr_ci'))}",
            f"{_num(g.get('accuracy'))} {_ci(g.get('accuracy_ci'))}",
            _num(g.get("disparate_impact_ratio")),
        ]
        for g in r.get("groups") or []
    ]
    blocks.append(("grid", ["group", "size", "selection rate", "TPR", "FPR", "accuracy", "DI ratio"], rows))
    blocks.append(("kv", [(k.replace("_", " "), _num(v)) for k, v in m.items()]))
    return blocks


def _explanation(ev: VersionEvaluation | None) -> list[Block]:
    blocks: list[Block] = [("h2", "Explanations")]
    if ev is None:
        return [*blocks, ("p", "No explanation yet.")]
    r = ev.result
    blocks.append(
        (
            "p",
            f"Permutation importance on {ev.dataset} ({r.get('rows')} rows, {r.get('n_repeats')} repeats): the drop "
            f"in {r.get('score')} against the {r.get('target')} when a feature is shuffled.",
        )
    )
    rows = [[i["feature"], _num(i["mean"]), _num(i["std"])] for i in r.get("importances") or []]
    blocks.append(("grid", ["feature", "importance", "std"], rows))
    return blocks


# --------------------------------------------------------------------------------------------------
# Markdown and HTML


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind in ("p", "text"):
            out.append(str(block[1]))
        elif kind == "kv":
            out.append("| | |\n|---|---|\n" + "\n".join(f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in block[1]))
        elif kind == "grid":
            headers, rows = block[1], block[2]
            lines = ["| " + " | ".join(map(_md_cell, headers)) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
    "th{background:#f4f4f4}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}"
)


def to_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(str(block[1]))}</p>")
        elif kind == "text":  # narrative: paragraphs on blank lines, line breaks kept, everything escaped
            for para in str(block[1]).split("\n\n"):
                out.append("<p>" + "<br>".join(e(line) for line in para.splitlines()) + "</p>")
        elif kind == "kv":
            rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in block[1])
            out.append(f"<table>{rows}</table>")
        elif kind == "grid":
            head = "".join(f"<th>{e(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Model Card Toolkit JSON


def _descriptions(text: str | None) -> list[dict[str, str]]:
    return [{"description": text}] if text else []


def _metric(kind: str, value: Any, slice_: str = "", interval: Any = None) -> dict[str, Any]:
    metric: dict[str, Any] = {"type": kind, "value": _num(value), "slice": slice_}
    if interval:
        metric["confidence_interval"] = {"lower_bound": str(interval[0]), "upper_bound": str(interval[1])}
    return metric


def toolkit_json(card: ModelCard) -> dict[str, Any]:
    d = card.model_details
    s = card.sections
    metrics = [_metric(k, v) for k, v in card.run_metrics.items()]
    ev = card.evaluation
    if ev is not None:
        metrics += [_metric(k, v, f"dataset={ev.dataset}") for k, v in ev.metrics.items() if v is not None]
        for column, values in (ev.result.get("slices") or {}).items():
            for value, figures in values.items():
                metrics += [
                    _metric(k, v, f"{column}={value}") for k, v in figures.items() if v is not None and k != "count"
                ]
    fair = card.fairness
    if fair is not None:
        for g in fair.result.get("groups") or []:
            where = f"{'+'.join(fair.result.get('sensitive_features') or [])}={g['group']}"
            for key in ("selection_rate", "tpr", "fpr", "accuracy"):
                if g.get(key) is not None:
                    metrics.append(_metric(key, g[key], where, g.get(f"{key}_ci")))
        metrics += [_metric(k, v, "fairness") for k, v in fair.metrics.items() if v is not None]
    return {
        "schema_version": "0.0.2",
        "model_details": {
            "name": d.name,
            "overview": s.get("overview") or d.description or d.model_description or "",
            "owners": [{"name": owner} for owner in d.owners],
            "version": {"name": str(d.version), "date": _when(d.created_at)},
            "path": d.uri,
            "references": [],
            "licenses": [],
            "citations": [],
        },
        "model_parameters": {
            "model_architecture": d.flavor,
            "data": [
                {
                    "name": ds.ref,
                    "link": ds.ref,
                    "sensitive": {
                        "sensitive_data": list((fair.result.get("sensitive_features") or []) if fair else [])
                    },
                    "rows": ds.row_count,
                    "digest": ds.digest,
                    "columns": ds.columns,
                }
                for ds in card.training_data
            ],
            "input_format": json.dumps((d.signature or {}).get("inputs")) if d.signature else "",
            "output_format": json.dumps((d.signature or {}).get("outputs")) if d.signature else "",
        },
        "quantitative_analysis": {"performance_metrics": metrics, "graphics": {"collection": []}},
        "considerations": {
            "users": _descriptions(s.get("users")),
            "use_cases": _descriptions(s.get("intended_use")) + _descriptions(s.get("use_cases")),
            "limitations": _descriptions(s.get("limitations")) + _descriptions(s.get("caveats")),
            "tradeoffs": _descriptions(s.get("tradeoffs")),
            "ethical_considerations": (
                [{"name": s["ethical_considerations"], "mitigation_strategy": ""}]
                if s.get("ethical_considerations")
                else []
            ),
        },
        "shipyard": {
            "digest": d.digest,
            "stage": d.stage,
            "risk_tier": d.risk_tier,
            "sections": s,
            "approvals": [r.model_dump() for r in card.reviews],
            "signatures": [x.model_dump() for x in card.signatures],
            "fairness": fair.model_dump() if fair else None,
            "explanation": _without_background(card.explanation),
            "evaluation": ev.model_dump() if ev else None,
            "completeness": card.completeness.model_dump(),
            "generated_at": card.generated_at,
        },
    }


def _without_background(ev: VersionEvaluation | None) -> dict[str, Any] | None:
    """The explanation minus its background rows (raw data has no place in a card)."""
    if ev is None:
        return None
    dumped = ev.model_dump()
    dumped["result"] = {k: v for k, v in dumped["result"].items() if k != "background"}
    return dumped
