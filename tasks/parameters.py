"""Pieces every runbook's parameter model uses: block fields and ordered thresholds.

A block field is typed by its block class, so the Prefect UI offers a picker of saved blocks;
from the command line, Python or `prefect deployment run` it also takes a saved block's name.

Example:
    >>> from typing import Annotated
    >>> from opsflow.blocks import Prometheus
    >>> class Params(StrictModel):
    ...     prometheus: Annotated[Prometheus | None, by_name(Prometheus)] = None
    >>> Params().prometheus is None
    True
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from prefect.blocks.core import Block
from prefect.utilities.dispatch import get_registry_for_type
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    SerializeAsAny,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from opsflow.blocks.backend import ExecutionBackendBlock, backend_block_types
from opsflow.opsapi.models import StrictModel

__all__ = [
    "PLATFORM_TYPES",
    "DEFAULT_BLOCK",
    "DEFAULT_BLOCK_HELP",
    "ByName",
    "NotifyBlock",
    "Platform",
    "StrictModel",
    "block_fields",
    "by_name",
    "concrete",
    "existing_file",
    "from_fields",
    "kinds",
    "load_block",
    "not_above",
    "notify_block_field",
    "ordered_fields",
]

DEFAULT_BLOCK = "default"
DEFAULT_BLOCK_HELP = f'Empty: the block saved as "{DEFAULT_BLOCK}".'


@dataclass(frozen=True)
class ByName(BeforeValidator):
    """A block field's validator that also takes a saved block's name; `fallback` is the
    name used when the field is empty (None: empty means none, e.g. no Alertmanager)."""

    block_types: tuple[type[Block], ...] = ()
    fallback: str | None = None

    @property
    def kind(self) -> str:
        """What the field holds, for messages: "Ops Platform or Salt API"."""
        return kinds(self.block_types)


def block_fields(model: type[BaseModel]) -> dict[str, ByName]:
    """The model's block fields, by name, with their validators (for the command line)."""
    return {
        name: meta
        for name, field in model.model_fields.items()
        for meta in field.metadata
        if isinstance(meta, ByName)
    }


def by_name(*block_types: type[Block], fallback: str | None = DEFAULT_BLOCK) -> ByName:
    """Let a block field also take the name of a saved block, loaded when the parameters are
    validated: ``"salt-api/lab"`` names the type; a bare ``"lab"`` is the first of
    `block_types` that has a block of that name."""

    def load(value: Any) -> Any:
        return load_block(value, block_types)

    return ByName(load, block_types=block_types, fallback=fallback)


def load_block(value: Any, block_types: tuple[type[Block], ...]) -> Any:
    """A block from a name, a `slug/name`, a past run's stored block (loaded afresh), or a
    block's fields (as a deployment's picked block arrives).

    A name is looked up in the block types this process has imported first, and in installed
    packages' types (`prefect.collections` entry points, 0.3 s to import) only when none of
    those has it."""
    if isinstance(value, Block):
        return value
    try:
        if not isinstance(value, str):  # fields are matched against every type there is
            return _load_block(value, concrete(block_types))
        imported = concrete(block_types, load=False)
        try:
            return _load_block(value, imported)
        except ValueError:
            every = concrete(block_types)
            if every == imported:
                raise
            return _load_block(value, every)
    except _NotSaved as refused:  # the saved names are read once, for the final refusal
        raise ValueError(f"{refused}{_hint(refused.name, refused.block_types)}") from None


class _NotSaved(ValueError):
    """No block of these types has this name (the hint is added by `load_block`)."""

    def __init__(self, name: str, block_types: list[type[Block]]) -> None:
        super().__init__(f"no {kinds(block_types)} block named {name!r} is saved")
        self.name, self.block_types = name, block_types


def _load_block(value: Any, block_types: tuple[type[Block], ...]) -> Any:
    if isinstance(value, dict) and value.get("_block_document_id"):
        # A block as a past run's parameters stored it (secrets masked): load it afresh.
        slug = value.get("block_type_slug")
        chosen = next((t for t in block_types if t.get_block_type_slug() == slug), None)
        if chosen is None:
            raise ValueError(
                f"the stored block's type {slug!r} is not installed here: install the package "
                f"that provides it (expected: {kinds(block_types)})"
            )
        return chosen.load_from_ref({"block_document_id": value["_block_document_id"]}, _sync=True)
    if isinstance(value, dict):
        return from_fields(value, block_types)
    if not isinstance(value, str):
        return value
    slug, _, rest = value.partition("/")
    typed = [t for t in block_types if t.get_block_type_slug() == slug]
    other = (get_registry_for_type(Block) or {}).get(slug) if rest and not typed else None
    if other is not None:
        raise ValueError(
            f"{value!r} is a {other.get_block_type_name()} block; expected: {kinds(block_types)}"
        )
    candidates, name = (typed, rest) if typed and rest else (list(block_types), value)
    for block_type in candidates:
        try:
            return block_type.load(name, _sync=True)
        except ValueError:
            continue
        except RuntimeError as exc:  # saved, but not valid as this version reads it
            if not isinstance(exc.__cause__, ValidationError):
                raise
            said = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.__cause__.errors())
            raise ValueError(
                f"the saved {block_type.get_block_type_name()} block {name!r} is not valid: "
                f"{said} (correct it in the Prefect UI, or delete it and save it anew)"
            ) from None
    raise _NotSaved(name, candidates)


def _hint(name: str, block_types: list[type[Block]] | tuple[type[Block], ...]) -> str:
    """ "; did you mean 'prod'? (saved: lab, prod)", from the names saved for these types."""
    from prefect.client.orchestration import get_client

    saved: list[str] = []
    try:
        with get_client(sync_client=True) as client:
            for block_type in block_types:
                documents = client.read_block_documents_by_type(block_type.get_block_type_slug())
                saved += [d.name for d in documents if d.name and not d.is_anonymous]
    except Exception:  # noqa: BLE001 - a hint is best effort: the refusal stands without it
        saved = []
    saved = sorted(set(saved))
    if not saved:
        return "; save one first (none of that type is saved)"
    close = difflib.get_close_matches(name, saved, n=2, cutoff=0.6)
    guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(saved[:10]) + (f" and {len(saved) - 10} more" if len(saved) > 10 else "")
    return f"{guess} (saved: {shown})"


def concrete(block_types: tuple[type[Block], ...], load: bool = True) -> tuple[type[Block], ...]:
    """The block types a field takes: `ExecutionBackendBlock` stands for every backend type
    this process knows (opsflow's, and those installed packages register; with `load`, their
    entry points are imported first)."""
    found: list[type[Block]] = []
    for block_type in block_types:
        found += backend_block_types(load) if block_type is ExecutionBackendBlock else [block_type]
    return tuple(dict.fromkeys(found))


def kinds(block_types: tuple[type[Block], ...] | list[type[Block]]) -> str:
    """ "Ops Platform or Salt API", "Ops Platform, Salt API or In-House Platform"."""
    names = [t.get_block_type_name() for t in concrete(tuple(block_types))]
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"


def from_fields(value: dict[str, Any], block_types: tuple[type[Block], ...]) -> Block:
    """The block whose fields these are (given by hand, e.g. in a deployment's JSON): the type
    `block_type_slug` names, else the one whose fields are exactly these keys (a saved
    document's data has them all), else the only one they validate as; none: the errors of
    the type they look most like (a typo is named)."""
    fields = {k: v for k, v in value.items() if k != "block_type_slug"}
    slug = value.get("block_type_slug")
    if slug:
        typed = [t for t in block_types if t.get_block_type_slug() == slug]
        if not typed:
            raise ValueError(f"block_type_slug {slug!r} is not a {kinds(block_types)} block")
        return typed[0].model_validate(fields)
    exact = [t for t in block_types if set(fields) == set(t.model_fields)]
    fitting = exact or [t for t in block_types if _validates(t, fields)]
    if len(fitting) == 1:
        return fitting[0].model_validate(fields)
    closest = max(block_types, key=lambda t: len(set(fields) & _field_names_of(t)))
    if not fitting and set(fields) & _field_names_of(closest):
        try:
            closest.model_validate(fields)
        except ValidationError as exc:
            said = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ValueError(f"not a valid {closest.get_block_type_name()} block: {said}") from None
    raise ValueError(
        f"these fields fit {'more than one' if fitting else 'no'} block type of "
        f"{kinds(fitting or block_types)}: give the block by name ('<block-type-slug>/<name>') "
        "or add its block_type_slug"
    )


def _field_names_of(block_type: type[Block]) -> set[str]:
    return set(block_type.model_fields)


def _validates(block_type: type[Block], fields: dict[str, Any]) -> bool:
    try:
        block_type.model_validate(fields)
    except (ValidationError, TypeError):
        return False
    return True


class _AnyBackend:
    """The JSON schema of a `platform` field: a choice of every backend block type known when
    it is asked for (the Prefect UI's block pickers; `opsflow deploy` and `serve` load the
    installed packages' block types first)."""

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        choices = [t.__pydantic_core_schema__ for t in backend_block_types(load=False)]
        return handler(core_schema.union_schema([*choices, core_schema.none_schema()]))


# What a runbook's `platform` may be: any execution backend block, opsflow's or a user's (a
# bare block name is looked up in `backend_block_types` order: the seed-style platform first).
PLATFORM_TYPES: tuple[type[Block], ...] = (ExecutionBackendBlock,)
# (SerializeAsAny: a run's stored parameters keep the backend's own fields, not the base's.)
Platform = Annotated[
    SerializeAsAny[ExecutionBackendBlock] | None,
    by_name(*PLATFORM_TYPES),
    _AnyBackend(),
    Field(title="Platform"),
]


def _block_slug_and_name(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*/\S.*", value):
        raise ValueError(
            f"{value!r} is not '<block-type-slug>/<name>', e.g. wecom-webhook/ops "
            "(prefect block ls lists the saved blocks)"
        )
    return value


def notification_block_name(value: Any) -> Any:
    """A notification block as `<slug>/<name>`: a picked one arrives as the block (Prefect
    resolved its reference) or as the reference itself; a name stays as it is."""
    if isinstance(value, dict) and isinstance(value.get("$ref"), dict):
        value = Block.load_from_ref(value["$ref"], _sync=True)
    if isinstance(value, Block):
        name = value._block_document_name
        if not name or value._is_anonymous:
            raise ValueError("a notification block must be saved under a name to be picked")
        return f"{value.get_block_type_slug()}/{name}"
    return value


def notification_block_types() -> tuple[type[Block], ...]:
    """Every notification block type this process knows: Prefect's, opsflow's chat webhooks,
    and those installed packages register."""
    from prefect.blocks import notifications  # noqa: F401 - registers Prefect's own
    from prefect.blocks.abstract import NotificationBlock

    import opsflow.blocks  # noqa: F401 - registers opsflow's

    registered = (get_registry_for_type(Block) or {}).values()
    found = {
        t.get_block_type_slug(): t
        for t in registered
        if issubclass(t, NotificationBlock) and not inspect.isabstract(t)
    }
    return tuple(
        sorted(found.values(), key=lambda t: (not t.__module__.startswith("opsflow."), t.__name__))
    )


class _AnyNotifier:
    """The JSON schema of `notify_block`: a picker of every saved notification block (the
    value the run gets is still `<slug>/<name>`, as the command line gives it)."""

    def __get_pydantic_json_schema__(
        self, _schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        choices = [t.__pydantic_core_schema__ for t in notification_block_types()]
        return handler(core_schema.union_schema([*choices, core_schema.none_schema()]))


NotifyBlock = Annotated[
    str | None,
    BeforeValidator(notification_block_name),
    AfterValidator(_block_slug_and_name),
    _AnyNotifier(),
    Field(title="Notify Block"),
]


def notify_block_field() -> Any:
    """The `notify_block` parameter every runbook has."""
    return Field(
        default=None,
        description="Notification block told how the run ended: pick a saved one (on the "
        "command line, its type slug and name, e.g. wecom-webhook/ops).",
    )


def not_above(model: BaseModel, lower: str, upper: str) -> None:
    """Refuse `lower` above `upper` (a recovery threshold above the trigger, say), naming both.

    Raises:
        ValueError: with the fix in the message.
    """
    low, high = getattr(model, lower), getattr(model, upper)
    if low > high:
        raise ValueError(
            f"{lower} ({low:g}) must not be above {upper} ({high:g}): "
            f"lower {lower} or raise {upper}"
        )


def existing_file(value: str | None, kind: str) -> str | None:
    """`value` if it names a file (after `~`), else a refusal saying what to give: `kind` is
    what the file is ("a CSV file"). A model lists such fields in its `FILES` (field ->
    kind), which `opsflow run` checks the same way before the runbook is imported.

    Example:
        >>> existing_file("/", "a CSV file")
        Traceback (most recent call last):
        ...
        ValueError: '/' is a directory: give the path of a CSV file
    """
    if value is None:
        return None
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~someone who is no user here: no such file either
        path = Path(value)
    if path.is_dir():
        raise ValueError(f"{value!r} is a directory: give the path of {kind}")
    if not path.is_file():
        raise ValueError(f"{value!r} does not exist: give the path of {kind}")
    return value


def ordered_fields(model: BaseModel) -> None:
    """`not_above` for each pair in the model's `NOT_ABOVE` (lower field -> upper field).

    Declared, not only checked, so that `opsflow run` refuses the same pairs, in the same words,
    from its option specs before the runbook is imported (`opsflow.flows.cli.specs`).

    Example:
        >>> from typing import ClassVar
        >>> class Lines(StrictModel):
        ...     NOT_ABOVE: ClassVar[dict[str, str]] = {"warning": "critical"}
        ...     warning: float = 0.7
        ...     critical: float = 1.0
        >>> ordered_fields(Lines(warning=2))
        Traceback (most recent call last):
        ...
        ValueError: warning (2) must not be above critical (1): lower warning or raise critical
    """
    for lower, upper in getattr(model, "NOT_ABOVE", {}).items():
        not_above(model, lower, upper)
