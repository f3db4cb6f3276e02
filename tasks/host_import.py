"""Reading and checking host rows (CSV or dicts) before anything is registered.

Every problem is collected, not only the first, so one run tells the user everything to fix.

Example:
    >>> read_host_rows(rows=[{"hostname": "web-01", "ip": "10.0.0.1", "tags": "web;prod"}])[0].tags
    ['web', 'prod']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from opsflow.opsapi.errors import ConfigurationError, InvalidHostRows
from opsflow.opsapi.models import Host, HostSpec

if TYPE_CHECKING:  # pandas is imported where rows are read, not on every process start
    import pandas as pd

COLUMNS = ("hostname", "ip", "os", "owner", "tags")


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    return [t.strip() for t in re.split(r"[;,|]", str(value or "")) if t.strip()]


def _read_csv(path: Path) -> pd.DataFrame:
    """The file as text columns; a file pandas cannot read is a `ConfigurationError` saying why."""
    import pandas as pd

    try:  # utf-8-sig: spreadsheets save CSV with a byte-order mark
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError:
        problem = "is empty: its first line must be the header, e.g. hostname,ip,os,owner,tags"
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8"
    except pd.errors.ParserError as exc:
        problem = f"is not a valid CSV file ({exc}); quote fields that contain commas"
    raise InvalidHostRows(f"csv_path {str(path)!r} {problem}")


def read_host_rows(
    csv_path: str | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
    ignore_extra_columns: bool = False,
) -> list[HostSpec]:
    """Validate every row (line numbers as in the file); raise `InvalidHostRows` on any problem.

    Args:
        ignore_extra_columns: drop columns other than hostname, ip, os, owner and tags (an
            inventory export has more) instead of refusing the file.
    """
    if (csv_path is None) == (rows is None):
        raise ConfigurationError("give exactly one of csv_path or rows")
    if csv_path is not None:
        path = Path(csv_path).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"csv_path {str(path)!r} does not exist")
        frame = _read_csv(path)
        first_line = 2  # line 1 is the header
    else:
        import pandas as pd

        frame = pd.DataFrame(list(rows or []), dtype=object)
        first_line = 1
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("hostname", "ip") if c not in frame.columns]
    if missing:
        raise InvalidHostRows(f"missing column(s) {missing}: the file needs hostname and ip")
    unknown = sorted(set(frame.columns) - set(COLUMNS))
    if unknown and not ignore_extra_columns:
        raise InvalidHostRows(
            f"unknown column(s) {unknown}: allowed are {list(COLUMNS)} "
            "(ignore_extra_columns drops the others)"
        )
    frame = frame[[c for c in frame.columns if c in COLUMNS]]
    problems: list[str] = []
    specs: list[HostSpec] = []
    seen: dict[tuple[str, str], int] = {}
    for offset, record in enumerate(frame.to_dict("records")):
        line = first_line + offset
        data = {k: (None if v in ("", None) or v != v else v) for k, v in record.items()}
        data["tags"] = _tags(record.get("tags"))
        data["hostname"] = str(data.get("hostname") or "").strip()
        data["ip"] = str(data.get("ip") or "").strip()
        try:
            spec = HostSpec.model_validate(data)
        except ValidationError as exc:
            problems += [_problem(line, e, data) for e in exc.errors()]
            continue
        for column in ("hostname", "ip"):
            key = (column, getattr(spec, column).lower())
            if key in seen:
                problems.append(f"row {line}: {column}: {key[1]!r} repeats row {seen[key]}")
            seen.setdefault(key, line)
        specs.append(spec)
    if len(problems) == 1:
        raise InvalidHostRows(f"{problems[0]}; nothing was registered")
    if problems:
        raise InvalidHostRows(
            f"{len(problems)} problems, nothing was registered:\n" + "\n".join(problems[:200])
        )
    return specs


def _problem(line: int, error: Any, data: dict[str, Any]) -> str:
    """ "row 4: ip: '999.1.1.1' is not an IPv4 or IPv6 address", the value shown once."""
    field = ".".join(map(str, error["loc"]))
    message = str(error["msg"]).removeprefix("Value error, ")
    value = data.get(str(error["loc"][0]))
    shown = "" if repr(value) in message else f" (got {value!r})"
    return f"row {line}: {field}: {message}{shown}"


@dataclass
class InventoryDiff:
    """How rows compare with the inventory: new, existing but different, identical."""

    new: list[HostSpec] = field(default_factory=list)
    changed: list[tuple[str, HostSpec, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def changes_text(self, hostname: str) -> str:
        """ "owner: payments -> sre; tags: web -> web, prod" for a changed host."""
        changes = next(c for _, spec, c in self.changed if spec.hostname == hostname)
        return "; ".join(f"{k}: {_shown(a)} -> {_shown(b)}" for k, (a, b) in changes.items())


def compare_with_inventory(specs: list[HostSpec], inventory: list[Host]) -> InventoryDiff:
    """Sort rows against the inventory by hostname; refuse an IP that another host has."""
    by_name = {h.hostname.lower(): h for h in inventory}
    by_ip = {h.ip: h for h in inventory}
    diff, clashes = InventoryDiff(), []
    for spec in specs:
        existing = by_name.get(spec.hostname.lower())
        owner = by_ip.get(spec.ip)
        if owner is not None and (existing is None or owner.id != existing.id):
            clashes.append(f"{spec.hostname}: ip {spec.ip} already belongs to {owner.hostname}")
        elif existing is None:
            diff.new.append(spec)
        elif changes := _changes(existing, spec):
            diff.changed.append((existing.id, spec, changes))
        else:
            diff.unchanged.append(spec.hostname)
    if clashes:
        raise InvalidHostRows(
            f"{len(clashes)} row(s) clash with the inventory, nothing was registered:\n"
            + "\n".join(clashes[:200])
        )
    return diff


def _changes(host: Host, spec: HostSpec) -> dict[str, tuple[Any, Any]]:
    return {
        f: (getattr(host, f), getattr(spec, f))
        for f in ("ip", "os", "owner", "tags")
        if getattr(host, f) != getattr(spec, f)
    }


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    return "(none)" if value is None else str(value)
