"""``shipyard card|fairness|explain …``: model cards (show, edit, check, evaluate with slices),
fairness evaluations, and global and local explanations of a model version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.output import State, cell, emit_json, key_values, number, state, table, when
from shipyard.core.errors import InvalidInput
from shipyard.governance.evaluation_entities import VersionEvaluation

card_app = typer.Typer(no_args_is_help=True)
fairness_app = typer.Typer(no_args_is_help=True)
explain_app = typer.Typer(no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[int, typer.Argument(help="Model version number.")]
DataOpt = Annotated[str, typer.Option("--data", "-d", help="Dataset version to compute on: NAME@N (or NAME).")]


def _csv(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated values alike: ``--slice a --slice b`` or ``--slice a,b``."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _ci(interval: Any) -> str:
    return "" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _verdict(value: Any) -> str:
    return "-" if value is None else ("pass" if value else "FAIL")


# --------------------------------------------------------------------------------------------------
# shipyard card


@card_app.command("show")
def card_show(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    format: Annotated[str, typer.Option("--format", "-f", help="markdown, html or json (Model Card Toolkit).")] = (
        "markdown"
    ),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the card to this file.")] = None,
) -> None:
    """Render a version's model card (Markdown by default; --json prints the assembled card)."""
    st = state(ctx)
    if st.json and output is None:
        emit_json(st.client.get_model_card(name, version))
        return
    text = st.client.render_model_card(name, version, format=format)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        if st.json:
            emit_json({"written": str(output), "format": format, "bytes": len(text.encode())})
        else:
            st.err.print(f"wrote the {format} model card of {name}/{version} to {output}")
        return
    typer.echo(text, nl=False)


@card_app.command("set")
def card_set(
    ctx: typer.Context,
    name: NameArg,
    section: Annotated[str, typer.Argument(help="intended_use, limitations, ethical_considerations, caveats, ...")],
    text: Annotated[str | None, typer.Argument(help="The text (or --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from this file ('-' for stdin).")] = None,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="For this version only (default: model-wide).")
    ] = None,
) -> None:
    """Set a narrative section of a model's card; empty text removes it."""
    st = state(ctx)
    if (text is None) == (file is None):
        raise InvalidInput("give the section's text or --file, not both and not neither", field="text")
    if file is not None:
        import sys

        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    section_set = st.client.set_card_section(name, section, text or "", version=version)
    if st.json:
        emit_json(section_set)
        return
    where = f"{name}/{version}" if version is not None else f"{name} (every version)"
    verb = "removed" if not section_set.text else "set"
    st.out.print(f"{verb} {section} of the card of {where}")


@card_app.command("check")
def card_check(ctx: typer.Context, name: NameArg, version: VersionArg) -> None:
    """Is the card complete? Exit status 1 when a required section is missing, listing it."""
    st = state(ctx)
    found = st.client.card_completeness(name, version)
    if st.json:
        emit_json(found)
    else:
        grid = table("section", "present")
        for section, present in found.sections.items():
            grid.add_row(cell(section), cell("yes" if present else "MISSING"))
        st.out.print(grid)
        verdict = "complete" if found.complete else f"incomplete: missing {', '.join(found.missing)}"
        st.out.print(f"model card of {name}/{version}: {verdict} (score {found.score:.2f})")
    if not found.complete:
        raise typer.Exit(1)


@card_app.command("evaluate")
def card_evaluate(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    data: DataOpt,
    label: Annotated[str, typer.Option("--label", "-l", help="The label column.")],
    slice_: Annotated[
        list[str] | None, typer.Option("--slice", "-s", help="Slice by this column (repeatable).")
    ] = None,
) -> None:
    """Evaluate a version on a dataset version, overall and per slice; stored for its card and policies."""
    st = state(ctx)
    ev = st.client.evaluate_version(name, version, data, label, slices=_csv(slice_) or None)
    if st.json:
        emit_json(ev)
        return
    _show_evaluation(st, ev)


def _show_evaluation(st: State, ev: VersionEvaluation) -> None:
    r = ev.result
    key_values(
        st,
        [("model", f"{ev.model_name}/{ev.version}"), ("dataset", ev.dataset), ("task", r.get("task")),
         ("rows", r.get("rows")), ("label", r.get("label_column"))],
    )  # fmt: skip
    grid = table("metric", "value", title="overall")
    for key, value in ev.metrics.items():
        if value is not None:
            grid.add_row(cell(key), cell(number(value)))
    st.out.print(grid)
    main = "accuracy" if r.get("task") == "classification" else "rmse"
    second = "f1" if r.get("task") == "classification" else "mae"
    for column, values in (r.get("slices") or {}).items():
        grid = table(column, "count", main, second, title=f"slices by {column}")
        for value, figures in values.items():
            grid.add_row(cell(value), cell(figures.get("count")), cell(number(figures.get(main))),
                         cell(number(figures.get(second))))  # fmt: skip
        st.out.print(grid)


# --------------------------------------------------------------------------------------------------
# shipyard fairness


@fairness_app.command("evaluate")
def fairness_evaluate(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    data: DataOpt,
    sensitive: Annotated[list[str], typer.Option("--sensitive", help="Sensitive feature column(s): a,b or repeated.")],
    label: Annotated[str, typer.Option("--label", "-l", help="The (binary) label column.")],
    reference_group: Annotated[
        str | None, typer.Option("--reference-group", help="Group to compare against (default: the largest).")
    ] = None,
    positive_label: Annotated[
        str | None, typer.Option("--positive-label", help="The favourable label (default: 1 / the model's last class).")
    ] = None,
    min_group_size: Annotated[
        int, typer.Option("--min-group-size", help="Smaller groups are flagged, not judged.")
    ] = 30,
) -> None:
    """Per-group rates with 95% intervals, disparity measures and the four-fifths rule."""
    st = state(ctx)
    ev = st.client.evaluate_fairness(
        name,
        version,
        data,
        _csv(sensitive),
        label,
        reference_group=reference_group,
        positive_label=positive_label,
        min_group_size=min_group_size,
    )
    if st.json:
        emit_json(ev)
        return
    _show_fairness(st, ev)


@fairness_app.command("show")
def fairness_show(ctx: typer.Context, name: NameArg, version: VersionArg) -> None:
    """The newest fairness evaluation of a version."""
    st = state(ctx)
    ev = st.client.get_evaluation(name, version, "fairness")
    if st.json:
        emit_json(ev)
        return
    _show_fairness(st, ev)


def _show_fairness(st: State, ev: VersionEvaluation) -> None:
    r = ev.result
    key_values(
        st,
        [
            ("model", f"{ev.model_name}/{ev.version}"),
            ("dataset", ev.dataset),
            ("sensitive", ", ".join(r.get("sensitive_features") or [])),
            ("positive label", r.get("positive_label")),
            ("reference group", r.get("reference_group")),
            ("computed", f"{when(ev.created_at)} by {ev.created_by}"),
        ],
    )
    grid = table("group", "size", "selection rate", "95% CI", "TPR", "FPR", "accuracy", "DI ratio", "4/5")
    for g in r.get("groups") or []:
        grid.add_row(
            cell(g["group"] + (" (small)" if g.get("small") else "")),
            cell(g["size"]),
            cell(number(g.get("selection_rate"))),
            cell(_ci(g.get("selection_rate_ci"))),
            cell(number(g.get("tpr"))),
            cell(number(g.get("fpr"))),
            cell(number(g.get("accuracy"))),
            cell(number(g.get("disparate_impact_ratio"))),
            cell("small" if g.get("small") else _verdict(g.get("four_fifths_passed"))),
        )
    st.out.print(grid)
    m = ev.metrics
    key_values(
        st,
        [
            ("demographic parity difference", number(m.get("demographic_parity_difference"))),
            ("demographic parity ratio", number(m.get("demographic_parity_ratio"))),
            ("equalized odds difference", number(m.get("equalized_odds_difference"))),
            ("equal opportunity difference", number(m.get("equal_opportunity_difference"))),
            ("disparate impact ratio (min)", number(m.get("disparate_impact_ratio"))),
            ("four-fifths rule", _verdict(m.get("four_fifths_passed"))),
        ],
    )
    if r.get("small_groups"):
        st.out.print(
            f"small groups (fewer than {r.get('min_group_size')} rows, not judged): {'; '.join(r['small_groups'])}"
        )


# --------------------------------------------------------------------------------------------------
# shipyard explain


@explain_app.command("global")
def explain_global(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    data: DataOpt,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Score on this label (default: the model's own predictions).")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Shuffles per feature.")] = 5,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows sampled from the dataset.")] = 2000,
) -> None:
    """Permutation importance of each input feature; stored with the version (and its background rows)."""
    st = state(ctx)
    ev = st.client.explain_version(name, version, data, label_column=label, n_repeats=repeats, max_rows=max_rows)
    if st.json:
        emit_json(ev)
        return
    r = ev.result
    st.out.print(
        f"{ev.model_name}/{ev.version} on {ev.dataset}: drop in {r.get('score')} against the {r.get('target')} "
        f"when a feature is shuffled ({r.get('rows')} rows, {r.get('n_repeats')} repeats)"
    )
    grid = table("feature", "importance", "std")
    for item in r.get("importances") or []:
        grid.add_row(cell(item["feature"]), cell(number(item["mean"])), cell(number(item["std"])))
    st.out.print(grid)


@explain_app.command("predict")
def explain_predict(
    ctx: typer.Context,
    name: NameArg,
    version: VersionArg,
    input_: Annotated[str, typer.Option("--input", "-i", help="The input as a JSON object, e.g. '{\"x\": 1}'.")],
    top_k: Annotated[int, typer.Option("--top", help="How many contributions and reasons.")] = 5,
) -> None:
    """Explain one prediction: top feature contributions and adverse-action reasons."""
    st = state(ctx)
    try:
        inputs = json.loads(input_)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--input is not JSON: {exc.msg}", field="inputs") from exc
    if not isinstance(inputs, dict):
        raise InvalidInput("--input must be a JSON object of feature to value", field="inputs")
    found = st.client.explain_prediction(name, version, inputs, top_k=top_k)
    if st.json:
        emit_json(found)
        return
    key_values(
        st,
        [
            ("prediction", found.prediction),
            (found.output_name, number(found.output)),
            ("average", number(found.base_value)),
            ("background", f"{found.background} ({found.background_rows} rows)"),
        ],
    )
    grid = table("feature", "value", "contribution")
    for c in found.contributions:
        grid.add_row(cell(c.feature), cell(c.value), cell(f"{c.contribution:+.4f}"))
    st.out.print(grid)
    if found.reasons:
        st.out.print("reasons:")
        for reason in found.reasons:
            st.out.print(f"  - {reason}", soft_wrap=True)
