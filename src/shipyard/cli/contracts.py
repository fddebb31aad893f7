"""``shipyard contracts …``: infer, store, show and apply data contracts; thin adapters over the SDK.

Contracts are printed as YAML (the form they are edited in); ``--json`` prints the entities. ``validate``
exits 1 when the data breaks its contract, so it can gate a shell pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli.output import State, cell, clip, dumps, emit_json, key_values, short, state, table, when
from shipyard.data.validation.entities import CheckResult, ValidationReport

app = typer.Typer(no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="Dataset version: NAME@N, NAME@latest or NAME.")]
DatasetArg = Annotated[str, typer.Argument(help="Dataset name.")]


@app.command("infer")
def infer(
    ctx: typer.Context,
    ref: RefArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the YAML contract to this file.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Store it as the dataset's next contract version.")] = False,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Widen numeric ranges by this fraction of their span.")
    ] = 0.0,
    max_categories: Annotated[
        int, typer.Option("--max-categories", min=0, help="Most values an 'allowed' list may have.")
    ] = 20,
) -> None:
    """Infer a contract from a dataset version's schema and profile (the data is not read)."""
    from shipyard.data.validation.spec import dump_yaml

    st = state(ctx)
    spec = st.client.infer_contract(ref, tolerance=tolerance, max_categories=max_categories)
    text = dump_yaml(spec)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    contract = st.client.set_contract(ref.partition("@")[0], spec) if save else None
    if st.json:
        emit_json({"spec": spec, "contract": contract, "output": str(output) if output else None})
        return
    if output is None:
        st.out.print(Text(text.rstrip("\n")), soft_wrap=True)
    else:
        st.err.print(f"wrote {output}")
    if contract is not None:
        st.err.print(f"saved contract v{contract.version} for {contract.dataset} ({contract.digest})")


@app.command("set")
def set_(ctx: typer.Context, dataset: DatasetArg, file: Annotated[Path, typer.Argument(help="YAML contract.")]) -> None:
    """Store a YAML contract file as the dataset's next contract version (unchanged content is a no-op)."""
    st = state(ctx)
    contract = st.client.set_contract(dataset, file)
    if st.json:
        emit_json(contract)
        return
    st.out.print(Text(f"contract v{contract.version} for {contract.dataset} ({contract.digest})"), soft_wrap=True)


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: DatasetArg,
    version: Annotated[int | None, typer.Option("--version", "-v", min=1, help="Contract version.")] = None,
) -> None:
    """Print a contract as YAML (the latest unless --version)."""
    from shipyard.data.validation.spec import dump_yaml

    st = state(ctx)
    contract = st.client.get_contract(dataset, version)
    if st.json:
        emit_json(contract)
        return
    st.out.print(
        Text(f"# {contract.dataset} contract v{contract.version} {contract.digest} by {contract.created_by or '-'}")
    )
    st.out.print(Text(dump_yaml(contract.spec).rstrip("\n")), soft_wrap=True)


@app.command("list")
def list_(ctx: typer.Context, dataset: DatasetArg) -> None:
    """List a dataset's contract versions."""
    st = state(ctx)
    contracts = st.client.list_contracts(dataset)
    if st.json:
        emit_json(contracts)
        return
    grid = table("version", "digest", "columns", "checks", "created by", "created", digest={"no_wrap": True})
    for c in contracts:
        grid.add_row(
            cell(c.version, "bold"),
            cell(c.digest),
            cell(len(c.spec.get("columns", {}))),
            cell(len(c.spec.get("checks", []))),
            cell(c.created_by),
            cell(when(c.created_at)),
        )
    st.out.print(grid)


@app.command("validate")
def validate(
    ctx: typer.Context,
    ref: RefArg,
    contract: Annotated[
        Path | None, typer.Option("--contract", "-c", help="Validate against this YAML file instead.")
    ] = None,
    contract_version: Annotated[
        int | None, typer.Option("--contract-version", min=1, help="A stored contract version of the dataset.")
    ] = None,
) -> None:
    """Validate a dataset version against its contract and store the report; exit 1 if it fails."""
    st = state(ctx)
    if contract is not None and contract_version is not None:
        raise typer.BadParameter("give --contract or --contract-version, not both")
    report = st.client.validate_dataset(ref, contract=contract if contract is not None else contract_version)
    if st.json:
        emit_json(report)
    else:
        show_report(st, report)
    if not report.passed:
        raise typer.Exit(1)


@app.command("reports")
def reports(ctx: typer.Context, ref: RefArg) -> None:
    """List the validation reports stored with a dataset version, newest first."""
    st = state(ctx)
    found = st.client.validation_reports(ref)
    if st.json:
        emit_json(found)
        return
    grid = table("report", "result", "contract", "checks", "failed", "by", "created")
    for r in found:
        grid.add_row(
            cell(r.id),
            cell("passed" if r.passed else "FAILED", "green" if r.passed else "bold red"),
            cell(f"v{r.contract_version}" if r.contract_version else short(r.contract_digest, 15)),
            cell(len(r.checks)),
            cell(clip(", ".join(c.name for c in r.failed), 60)),
            cell(r.created_by),
            cell(when(r.created_at)),
        )
    st.out.print(grid)


@app.command("report")
def report(ctx: typer.Context, report_id: Annotated[str, typer.Argument(help="Report id.")]) -> None:
    """Show one stored validation report with its checks and offending rows."""
    st = state(ctx)
    found = st.client.get_validation_report(report_id)
    if st.json:
        emit_json(found)
        return
    show_report(st, found)


def show_report(st: State, report: ValidationReport) -> None:
    contract = f"v{report.contract_version} ({report.contract_digest})" if report.contract_version else None
    key_values(
        st,
        [
            ("dataset", report.ref or report.dataset),
            ("contract", contract or report.contract_digest),
            ("rows", report.row_count),
            ("result", Text("passed", "green") if report.passed else Text("FAILED", "bold red")),
            ("report", report.id),
        ],
    )
    st.out.print()
    grid = table("check", "result", "failing", "expected", "detail")
    for check in report.checks:
        grid.add_row(
            cell(check.name, "bold"),
            cell("ok" if check.passed else "FAIL", "green" if check.passed else "bold red"),
            cell(check.failing_count if not check.passed else ""),
            cell(clip(_expected(check), 40)),
            cell(clip(check.message or _rows(check), 100)),
        )
    st.out.print(grid)


def _expected(check: CheckResult) -> str:
    value: Any = check.expected
    if isinstance(value, (dict, list)):
        return dumps(value)
    return "" if value is None else str(value)


def _rows(check: CheckResult) -> str:
    if not check.failing_rows:
        return ""
    shown = []
    for row in check.failing_rows:
        position = row.get("_row")
        value = row.get(check.column) if check.column else None
        shown.append(f"row {position}: {value!r}" if check.column else f"row {position}")
    return "; ".join(shown)
