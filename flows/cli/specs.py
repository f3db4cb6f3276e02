"""`opsflow run NAME`'s options without importing Prefect or the runbook: read from
`runbook_options.json`, which `python -m opsflow.flows.cli.options` writes from the parameter
models (a unit test holds the two equal). `--help`, an unknown flag and a value of the wrong type
answer at once; the runbook is imported only to run it.

Example:
    >>> "--threshold" in [o["flag"] for o in load_specs()["restart-overloaded-hosts"]["options"]]
    True
"""

from __future__ import annotations

import functools
import inspect
import json
import operator
from pathlib import Path
from typing import Any

import typer

SPECS_FILE = Path(__file__).with_name("runbook_options.json")
TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool}
# pydantic's words, so a number out of bounds reads the same before and after the import
LIMITS = {
    "ge": (operator.ge, "greater than or equal to"),
    "gt": (operator.gt, "greater than"),
    "le": (operator.le, "less than or equal to"),
    "lt": (operator.lt, "less than"),
}


@functools.cache
def load_specs() -> dict[str, dict[str, Any]]:
    """Every shipped runbook's description and options."""
    return json.loads(SPECS_FILE.read_text())


def signature_of(options: list[dict[str, Any]]) -> inspect.Signature:
    """Typer options from their specs, each field's description as its help.

    A spec's type is `str`, `int`, `float`, `bool` or `list` (of text, repeatable); a `?`
    after it takes an empty value (None), a `!` makes the option required.
    """
    parameters = []
    for spec in options:
        kind = spec["type"].rstrip("?!")
        annotation: Any = list[str] | None if kind == "list" else TYPES[kind]
        if spec["type"].endswith("?"):
            annotation = annotation | None
        default = ... if spec["type"].endswith("!") else spec["default"]
        parameters.append(
            inspect.Parameter(
                spec["name"],
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation,
                default=typer.Option(
                    default,
                    spec["flag"],  # "--dry-run/--no-dry-run": one flag, on and off
                    help=spec["help"],
                    show_default=default is not None,
                ),
            )
        )
    return inspect.Signature(parameters)


def runbook_command(name: str) -> Any:
    """The click command `opsflow run NAME`: its options from the specs, the runbook imported
    when it runs."""
    from opsflow.flows.runbooks.catalog import CATALOG

    spec = load_specs()[name]

    def command(**given: Any) -> None:
        refused = out_of_bounds(spec["options"], given)
        if refused:
            from opsflow.flows.cli.common import console

            console.print(f"[red]{name}: {refused}[/]", soft_wrap=True)
            raise SystemExit(2)
        from opsflow.flows.cli.common import use_local_server

        use_local_server(f"opsflow run {name}")  # it comes up while the runbook is imported
        from opsflow.flows.cli.adhoc import run_typed

        run_typed(name, given)

    command.__signature__ = signature_of(spec["options"])  # type: ignore[attr-defined]
    command.__doc__ = spec["doc"]
    app = typer.Typer(add_completion=False)
    app.command(name, short_help=CATALOG[name].summary)(command)
    return typer.main.get_command(app)


def out_of_bounds(options: list[dict[str, Any]], given: dict[str, Any]) -> str | None:
    """The first number given outside its limits, said as the model would say it; None if all
    are within them (the model checks everything else once the runbook is imported)."""
    for spec in options:
        value = given.get(spec["name"])
        if value is None:
            continue
        for key, limit in spec.get("bounds", {}).items():
            within, words = LIMITS[key]
            if not within(value, limit):  # exact for ints and floats alike, any size
                return f"invalid {spec['flag']}: Input should be {words} {limit}"
    return None
