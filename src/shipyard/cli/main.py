"""The ``shipyard`` command: global options, the command tree, and the one place errors are rendered.

``main()`` is the console-script entry point. Global options (``--home``, ``--uri``, ``--json``,
``--debug``) live on the root callback and build a :class:`~shipyard.cli.output.State` whose
Client is created only when a command first needs it. Any exception escaping a command becomes
one ``error: …`` line on stderr and exit code 1 (usage errors keep typer's exit code 2); the
traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from shipyard import __version__
from shipyard.cli import (
    access,
    artifacts,
    audit,
    automations,
    batch,
    contracts,
    data,
    demo,
    deploy,
    evaluations,
    events,
    experiments,
    governance,
    inventory,
    journal,
    metrics,
    models,
    monitor,
    pipelines,
    privacy,
    runs,
    schedules,
    serve,
    server,
)
from shipyard.cli.output import State, report_error

GLOBAL_FLAGS = ("--json", "--debug")


class ShipyardGroup(TyperGroup):
    """The root group: turns any exception from a command into one error line and exit code 1.

    ``--json`` and ``--debug`` are also accepted after the command (``shipyard runs list --json``):
    they are moved in front of it before parsing (not past a ``--``).
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        head, tail = args[:cut], args[cut:]
        hoisted = [a for a in head if a in GLOBAL_FLAGS]
        return super().parse_args(ctx, hoisted + [a for a in head if a not in GLOBAL_FLAGS] + tail)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except BrokenPipeError:
            raise  # stdout closed early (`shipyard journal tail | head`): typer exits quietly
        except Exception as exc:
            st = ctx.obj if isinstance(ctx.obj, State) else None
            report_error(exc, debug=st.debug if st is not None else "--debug" in sys.argv)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="shipyard",
    cls=ShipyardGroup,
    help="Shipyard: experiment tracking, model registry and journal from the command line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Shipyard home (SQLite store and artifacts); default $SHIPYARD_HOME or ./.shipyard"
        ),
    ] = None,
    uri: Annotated[
        str | None,
        typer.Option("--uri", envvar="SHIPYARD_URI", help="URL of a remote `shipyard server`."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show stack traces of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    st = State(home=home, uri=uri or None, json=json_output, debug=debug)
    ctx.obj = st
    ctx.call_on_close(st.close)


app.add_typer(experiments.app, name="experiments", help="Create, list and manage experiments.")
app.add_typer(runs.app, name="runs", help="List, search, inspect and compare runs.")
app.add_typer(metrics.app, name="metrics", help="Metric series of a run.")
app.add_typer(artifacts.app, name="artifacts", help="Log, list and download run artifacts.")
app.add_typer(models.models_app, name="models", help="Registered models.")
app.add_typer(models.versions_app, name="versions", help="Versions of a registered model.")
app.add_typer(models.aliases_app, name="aliases", help="Aliases of a registered model (e.g. production).")
app.add_typer(data.app, name="data", help="Versioned datasets: add, log, show, diff, get, as-of, lineage.")
app.add_typer(contracts.app, name="contracts", help="Data contracts: infer, edit as YAML, validate datasets.")
app.add_typer(pipelines.app, name="pipeline", help="Pipelines: run, list runs, show, diff, schedule.")
pipelines.app.add_typer(schedules.app, name="schedule", help="Cron schedules of pipelines.")
app.add_typer(journal.app, name="journal", help="The audit journal: every change, in order.")
app.add_typer(
    audit.app, name="audit", help="The audit trail: verify the chain, checkpoints, per-model log, signatures, bundles."
)
app.add_typer(deploy.app, name="deploy", help="Roll model versions out to endpoints: canary, shadow, A/B, ...")
app.command("feedback", help="Report outcomes by prediction id (business metrics, labels).")(deploy.feedback)
app.add_typer(monitor.app, name="monitor", help="Monitoring: drift, performance with late labels, alerts, reports.")
app.add_typer(access.app, name="access", help="Users, service accounts, role grants, API tokens, protected aliases.")
app.command("login")(access.login)
app.command("logout")(access.logout)
app.command("whoami")(access.whoami)
app.command("inventory")(inventory.inventory)
app.add_typer(
    governance.review_app, name="review", help="Version lifecycle: submit for review, approve, reject, retire."
)
app.add_typer(governance.policy_app, name="policy", help="Policies as code: add, list, show, check a version.")
app.add_typer(evaluations.card_app, name="card", help="Model cards: show, edit sections, render, check completeness.")
app.add_typer(evaluations.fairness_app, name="fairness", help="Fairness evaluations of a model version.")
app.add_typer(evaluations.explain_app, name="explain", help="Global and local explanations of a model version.")
app.add_typer(privacy.privacy_app, name="privacy", help="Erase a data subject from logs, feedback and datasets.")
app.add_typer(privacy.retention_app, name="retention", help="Retention of prediction logs, feedback and labels.")
app.add_typer(events.events_app, name="events", help="Events from the journal: subscribers, the webhook runner.")
app.add_typer(events.webhooks_app, name="webhooks", help="Signed outgoing webhooks: add, list, dead letters, replay.")
app.add_typer(automations.app, name="automations", help="Automation rules as YAML, their firings, the closed loop.")
app.command("server", help="Run the Shipyard HTTP server.")(server.serve)
app.command("serve", help="Serve registered models for inference (OIP v2, JSON, MLflow).")(serve.serve)
app.command("scheduler", help="Run due pipeline schedules until stopped.")(schedules.scheduler)
app.command("batch-score", help="Score a dataset version with a registered model on Dask.")(batch.batch_score)
app.command("reproduce", help="Re-run a model version's pipeline and check it is bit-identical.")(batch.reproduce)
app.command("demo", help="Populate the home with a small demo project.")(demo.demo)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``shipyard``)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="shipyard")
    except SystemExit:
        raise
    except Exception as exc:  # only reachable for failures outside a command, e.g. while building one
        report_error(exc, debug="--debug" in (argv if argv is not None else sys.argv))
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
