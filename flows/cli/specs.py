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
import math
import operator
import re
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
    """The first value given that its field refuses (a number out of its limits or not finite,
    a word not among its choices, a text not matching its pattern or length, a file that is
    not there), then a number above the one it must not exceed (`not_above`: a recovery above
    its trigger) or no host chosen where all must be asked for (`unless_chosen`), said as the
    model would say it; None if all pass (the model checks everything else once the runbook
    is imported)."""
    for spec in options:
        value = given.get(spec["name"])
        if value is None:
            continue
        said = _refused(spec.get("bounds", {}), value)
        if said:
            return f"invalid {spec['flag']}: {said}"
    flags = {spec["name"]: spec["flag"] for spec in options}
    chosen = given.get("tag") or given.get("hostname_pattern") or given.get("host") is not None
    for spec in options:
        empty_scope = spec.get("bounds", {}).get("unless_chosen")  # run-command's `_scope`
        if empty_scope and not chosen and not given.get(spec["name"]):
            return str(empty_scope)
        upper = spec.get("bounds", {}).get("not_above")
        low, high = given.get(spec["name"]), given.get(upper or "")
        if low is not None and high is not None and low > high:
            lower_flag, upper_flag = spec["flag"], flags[upper]
            return (
                f"{lower_flag} ({low:g}) must not be above {upper_flag} ({high:g}): "
                f"lower {lower_flag} or raise {upper_flag}"
            )
    return None


def _refused(checks: dict[str, Any], value: Any) -> str | None:
    if checks.get("finite") and isinstance(value, float) and not math.isfinite(value):
        return "Input should be a finite number"
    choices = checks.get("choices")
    if choices and value not in choices:
        listed = [repr(c) for c in choices]
        words = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"
        return f"Input should be {words}"
    for key, limit in checks.items():
        if key in LIMITS and isinstance(value, int | float) and not LIMITS[key][0](value, limit):
            return f"Input should be {LIMITS[key][1]} {limit}"  # exact for any size
    if isinstance(value, str) and "file" in checks:  # as `existing_file` says it
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # ~someone who is no user here
            path = Path(value)
        if path.is_dir():
            return f"{value!r} is a directory: give the path of {checks['file']}"
        if not path.is_file():
            return f"{value!r} does not exist: give the path of {checks['file']}"
    if isinstance(value, str):
        if "min_length" in checks and len(value) < checks["min_length"]:
            n = checks["min_length"]
            return f"String should have at least {n} character{'s' if n != 1 else ''}"
        if "max_length" in checks and len(value) > checks["max_length"]:
            n = checks["max_length"]
            return f"String should have at most {n} character{'s' if n != 1 else ''}"
        if "pattern" in checks and not re.search(checks["pattern"], value):
            return f"String should match pattern '{checks['pattern']}'"
    return None
