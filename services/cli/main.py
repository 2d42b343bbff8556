"""The ``backbone`` command: one entry point for every process and tool of the backbone."""

from __future__ import annotations

import typer

from services.cli import (
    audit,
    backup,
    certs,
    demo,
    departments,
    fhir,
    forget,
    hl7,
    infra,
    kafka,
    keys,
    migrate,
    project,
    relay,
    retention,
    schema,
    serve,
    stack,
    supervise,
    verify,
)
from services.observability.logs import configure_logging
from services.settings import get_settings

app = typer.Typer(help="clinical-backbone: event-sourced clinical data.", no_args_is_help=True)
app.add_typer(infra.app, name="infra")
app.add_typer(keys.app, name="keys")
app.add_typer(certs.app, name="certs")
app.add_typer(kafka.app, name="kafka")
app.add_typer(audit.app, name="audit")
app.add_typer(retention.app, name="retention")
app.add_typer(schema.app, name="schema")
app.add_typer(hl7.app, name="hl7")
app.add_typer(fhir.app, name="fhir")
app.command("migrate")(migrate.migrate)
app.command("relay")(relay.relay)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("forget")(forget.forget)
app.command("verify")(verify.verify)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.command("pharmacy")(departments.pharmacy)
app.command("lab-routing")(departments.lab_routing_consumer)
app.command("project")(project.project)
app.command("rebuild")(project.rebuild)
app.command("up")(stack.up)
app.command("down")(stack.down)
app.command("status")(stack.status)
app.command("supervise")(supervise.supervise)


@app.callback()
def _setup() -> None:
    configure_logging(get_settings().log_level)


def main() -> None:
    app()
