"""A runbook's parameter model as command-line flags, and back.

Every field is a flag (`threshold` is `--threshold`); the selector is `--tag` (repeatable:
every tag given must be on a host), `--hostname-pattern` and `--host` (repeatable: only these); a block field is
`--<field>-block NAME`, the name of a saved block. Messages about fields are said in flags.

Example:
    >>> from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy
    >>> say_in_flags("recovery_threshold (3) must not be above threshold (2)", RestartPolicy)
    '--recovery-threshold (3) must not be above --threshold (2)'
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Sequence
from typing import Any

import typer
from pydantic import BaseModel

from opsflow.blocks.backend import ExecutionBackendBlock
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.parameters import ByName, block_fields

BOUNDS = ("ge", "gt", "le", "lt")  # a number's limits, checked before the runbook is imported
STRING_CHECKS = ("pattern", "min_length", "max_length")
SELECTOR_FLAGS = {"tags": "--tag", "hostname_pattern": "--hostname-pattern", "hostnames": "--host"}


def flag(field: str, model: type[BaseModel]) -> str:
    """The flag of a field: ``dry_run`` -> ``--dry-run``, ``platform`` -> ``--platform-block``."""
    if field in SELECTOR_FLAGS:
        return SELECTOR_FLAGS[field]
    if field in block_fields(model):
        return f"--{field.replace('_', '-')}-block"
    return f"--{field.replace('_', '-')}"


def flag_of(loc: Sequence[str | int], model: type[BaseModel]) -> str:
    """Where a validation error points, as the flag an operator typed."""
    names = [str(part) for part in loc if not isinstance(part, int)]
    if not names:
        return "parameters"
    if names[0] == "selector" and len(names) > 1:
        return SELECTOR_FLAGS.get(names[1], "--tag")
    if names[0] == "rows" and isinstance(loc[-1], str) and len(loc) > 2:
        return f"--rows (row {int(loc[1]) + 1}, {loc[-1]})"
    return flag(names[0], model)


def say_in_flags(message: str, model: type[BaseModel]) -> str:
    """`message` with the model's field names written as their flags (a selector's fields,
    ``selector.hostnames``, as theirs: ``--host``)."""
    message = re.sub(
        r"\bselector\.(tags|hostname_pattern|hostnames)\b",
        lambda m: SELECTOR_FLAGS[m.group(1)],
        message,
    )
    names = sorted(set(model.model_fields) | set(SELECTOR_FLAGS) | {"tags"}, key=len, reverse=True)
    # A multi-word name anywhere; a one-word name only where our messages use it as a name:
    # before a value ("threshold (2)", "command 'ls'") or after a verb ("raise threshold").
    verbs = "".join(rf"(?<={v} )" for v in ("set", "give", "raise", "lower", "or"))
    pattern = "|".join(
        rf"\b{re.escape(n)}\b"
        if "_" in n
        else rf"(?:{verbs.replace(')(', ')|(')}){n}\b|(?<![-\w]){n}(?= [('\"])"
        for n in names
    )
    return re.sub(pattern, lambda m: flag(m.group(0), model), message) if pattern else message


def option_specs(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as command-line options, as plain data (`opsflow.flows.cli.specs`
    builds the command from it without importing the model): each field's flag, type, default
    and description."""
    specs: list[dict[str, Any]] = []

    def option(name: str, kind: str, default: Any, flag_: str, help_text: str) -> None:
        specs.append(
            {"name": name, "type": kind, "default": default, "flag": flag_, "help": help_text}
        )

    blocks = block_fields(model)
    # The runbook's own fields first (--threshold before the shared --batch-size, ...).
    own = [n for n in model.model_fields if n in vars(model).get("__annotations__", {})]
    ordered = own + [n for n in model.model_fields if n not in own]
    for name in ordered:
        field = model.model_fields[name]
        help_text = field.description or ""
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        base = _base(field.annotation)
        if name in blocks:
            option(
                f"{name}_block", "str?", None, flag(name, model), help_text + _names(blocks[name])
            )
        elif field.annotation is HostSelector:
            option(
                "tag",
                "list",
                None,
                "--tag",
                "Only hosts with this tag; repeat it and a host needs every tag given.",
            )
            option(
                "hostname_pattern",
                "str?",
                None,
                "--hostname-pattern",
                "Only hosts whose name matches this glob, e.g. 'web-*'.",
            )
            option(
                "host", "list", None, "--host", "Only this host (by name); repeat it for several."
            )
        elif base is bool and default is True:  # on by default: --dry-run/--no-dry-run
            option(
                name, "bool", True, f"{flag(name, model)}/--no-{flag(name, model)[2:]}", help_text
            )
        elif base in (bool, int, float, str) or _choice(base):
            choices = list(typing.get_args(base)) if _choice(base) else None
            if choices:
                words = ", ".join(map(str, choices))
                help_text, base = f"{help_text} One of: {words}.", str
            kind = base.__name__ + ("" if default is not None or required else "?")
            option(name, kind + ("!" if required else ""), default, flag(name, model), help_text)
            # What the model would refuse, checked before it is imported (the same words).
            checks: dict[str, Any] = {
                key: getattr(meta, key)
                for meta in field.metadata
                for key in (BOUNDS if base in (int, float) else STRING_CHECKS)
                if getattr(meta, key, None) is not None
            }
            if choices:
                checks["choices"] = choices
            if base is float and model.model_config.get("allow_inf_nan") is False:
                checks["finite"] = True
            if checks:
                specs[-1]["bounds"] = checks
        elif typing.get_origin(base) is list and typing.get_args(base)[:1] == (str,):
            option(name, "list", None, flag(name, model), f"{help_text} (repeatable)")
        else:
            option(name, "str?", None, flag(name, model), f"{help_text} (JSON)")
    # The model's rules beyond one field's value, as bounds of the option they refuse.
    by_name = {spec["name"]: spec for spec in specs}
    for lower, upper in getattr(model, "NOT_ABOVE", {}).items():  # `ordered_fields`' pairs
        by_name[lower].setdefault("bounds", {})["not_above"] = upper
    for name, kind in getattr(model, "FILES", {}).items():  # `existing_file`'s fields
        by_name[name].setdefault("bounds", {})["file"] = kind
    if empty_scope := getattr(model, "EMPTY_SCOPE", None):  # no host chosen, all_hosts unset
        by_name["all_hosts"].setdefault("bounds", {})["unless_chosen"] = say_in_flags(
            empty_scope, model
        )
    return specs


def _names(field: ByName) -> str:
    """How a block field is named on the command line. A backend may be of a type installed
    after the specs were written (a user's own), so it is described, not listed."""
    if any(t is ExecutionBackendBlock for t in field.block_types):
        return (
            " The name of a saved backend block: NAME, or TYPE/NAME (ops-platform/NAME, "
            "salt-api/NAME, or your own backend's block type)."
        )
    slugs = " or ".join(f"{t.get_block_type_slug()}/NAME" for t in field.block_types)
    return f" The name of a saved {field.kind} block ({slugs})."


def catalog_option_specs() -> dict[str, dict[str, Any]]:
    """Every shipped runbook's command: its description and options (what `SPECS_FILE` holds)."""
    from opsflow.flows.runbooks.catalog import CATALOG
    from opsflow.flows.runbooks.registry import load_runbook

    specs = {}
    for name in CATALOG:
        runbook = load_runbook(name)
        specs[name] = {"doc": runbook.flow.description, "options": option_specs(runbook.params)}
    return specs


def values_from_flags(model: type[BaseModel], given: dict[str, Any]) -> dict[str, Any]:
    """The model's input from the flags given (flags left out leave the model's defaults).

    Raises:
        typer.BadParameter: a JSON flag that is not JSON.
    """
    given = dict(given)
    values: dict[str, Any] = {}
    tags, pattern = given.pop("tag", None) or (), given.pop("hostname_pattern", None)
    hostnames = given.pop("host", None) or ()
    if "selector" in model.model_fields and (tags or pattern or hostnames):
        values["selector"] = {"tags": list(tags), "hostname_pattern": pattern}
        if hostnames:
            values["selector"]["hostnames"] = list(hostnames)
    blocks = block_fields(model)
    for name, value in given.items():
        if value is None or value == ():
            continue
        if name.endswith("_block") and name.removesuffix("_block") in blocks:
            values[name.removesuffix("_block")] = value  # a saved block's name
            continue
        base = _base(model.model_fields[name].annotation)
        list_of_str = typing.get_origin(base) is list and typing.get_args(base)[:1] == (str,)
        plain = base in (str, int, float, bool) or _choice(base) or list_of_str
        if isinstance(value, str) and not plain:
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise typer.BadParameter(
                    f"{flag(name, model)} must be JSON ({exc.msg} at character {exc.pos})"
                ) from None
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def _choice(annotation: Any) -> bool:
    """A `Literal` of words (`side: Literal["above", "below"]`): a plain text flag."""
    return typing.get_origin(annotation) is typing.Literal


def _base(annotation: Any) -> Any:
    """`X` of `X | None` (and of `Annotated[X | None, ...]`)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if args and type(None) in args:
        return next(a for a in args if a is not type(None))
    return annotation


if __name__ == "__main__":  # python -m opsflow.flows.cli.options: write SPECS_FILE again
    from opsflow.flows.cli.specs import SPECS_FILE

    SPECS_FILE.write_text(json.dumps(catalog_option_specs(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SPECS_FILE}")
