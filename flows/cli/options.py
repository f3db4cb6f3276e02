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

import inspect
import json
import re
import typing
from collections.abc import Sequence
from typing import Any

import typer
from pydantic import BaseModel

from opsflow.opsapi.models import HostSelector
from opsflow.tasks.parameters import block_fields

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
    """`message` with the model's field names written as their flags."""
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


def options_signature(model: type[BaseModel]) -> inspect.Signature:
    """Typer options for the model's fields, with each field's description as its help."""
    parameters = []

    def option(name: str, annotation: Any, default: Any, flag_: str, help_text: str) -> None:
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation,
                default=typer.Option(
                    default, flag_, help=help_text, show_default=default is not None
                ),
            )
        )

    blocks = block_fields(model)
    # The runbook's own fields first (--threshold before the shared --batch-size, ...).
    own = [n for n in model.model_fields if n in vars(model).get("__annotations__", {})]
    ordered = own + [n for n in model.model_fields if n not in own]
    for name in ordered:
        field = model.model_fields[name]
        help_text = field.description or ""
        default = ... if field.is_required() else field.get_default(call_default_factory=True)
        base = _base(field.annotation)
        if name in blocks:
            option(
                f"{name}_block",
                str | None,
                None,
                flag(name, model),
                f"{help_text} The name of a saved {blocks[name].kind} block"
                f" ({' or '.join(t.get_block_type_slug() + '/NAME' for t in blocks[name].block_types)}).",
            )
        elif field.annotation is HostSelector:
            option(
                "tag",
                list[str] | None,
                None,
                "--tag",
                "Only hosts with this tag; repeat it and a host needs every tag given.",
            )
            option(
                "hostname_pattern",
                str | None,
                None,
                "--hostname-pattern",
                "Only hosts whose name matches this glob, e.g. 'web-*'.",
            )
            option(
                "host",
                list[str] | None,
                None,
                "--host",
                "Only this host (by name); repeat it for several.",
            )
        elif base is bool and default is True:  # on by default: --dry-run/--no-dry-run
            option(name, bool, True, f"{flag(name, model)}/--no-{flag(name, model)[2:]}", help_text)
        elif base in (bool, int, float, str) or _choice(base):
            if _choice(base):
                words = ", ".join(map(str, typing.get_args(base)))
                help_text, base = f"{help_text} One of: {words}.", str
            option(
                name,
                base if default is not None else base | None,
                default,
                flag(name, model),
                help_text,
            )
        elif typing.get_origin(base) is list and typing.get_args(base)[:1] == (str,):
            option(name, list[str] | None, None, flag(name, model), f"{help_text} (repeatable)")
        else:
            option(name, str | None, None, flag(name, model), f"{help_text} (JSON)")
    return inspect.Signature(parameters)


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
