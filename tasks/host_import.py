"""Reading and checking host rows (CSV or dicts) before anything is registered.

Every problem is collected, not only the first, so one run tells the user everything to fix.

Example:
    >>> read_host_rows(rows=[{"hostname": "web-01", "ip": "10.0.0.1", "tags": "web;prod"}])[0].tags
    ['web', 'prod']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from opsflow.opsapi.errors import ConfigurationError, InvalidHostRows
from opsflow.opsapi.models import Host, HostSpec

COLUMNS = ("hostname", "ip", "os", "owner", "tags")


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    return [t.strip() for t in re.split(r"[;,|]", str(value or "")) if t.strip()]


def _read_csv(path: Path) -> pd.DataFrame:
    """The file as text columns; a file pandas cannot read is a `ConfigurationError` saying why."""
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
    csv_path: str | None = None, rows: Sequence[dict[str, Any]] | None = None
) -> list[HostSpec]:
    """Validate every row (line numbers as in the file); raise `InvalidHostRows` on any problem."""
    if (csv_path is None) == (rows is None):
        raise ConfigurationError("give exactly one of csv_path or rows")
    if csv_path is not None:
        path = Path(csv_path).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"csv_path {str(path)!r} does not exist")
        frame = _read_csv(path)
        first_line = 2  # line 1 is the header
    else:
        frame = pd.DataFrame(list(rows or []), dtype=object)
        first_line = 1
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("hostname", "ip") if c not in frame.columns]
    if missing:
        raise InvalidHostRows(f"missing column(s) {missing}: the file needs hostname and ip")
    unknown = sorted(set(frame.columns) - set(COLUMNS))
    if unknown:
        raise InvalidHostRows(f"unknown column(s) {unknown}: allowed are {list(COLUMNS)}")
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
            problems += [
                f"row {line}: {'.'.join(map(str, e['loc']))}: {e['msg']} "
                f"(got {data.get(str(e['loc'][0]))!r})"
                for e in exc.errors()
            ]
            continue
        for field in ("hostname", "ip"):
            key = (field, getattr(spec, field).lower())
            if key in seen:
                problems.append(f"row {line}: {field}: {key[1]!r} repeats row {seen[key]}")
            seen.setdefault(key, line)
        specs.append(spec)
    if problems:
        raise InvalidHostRows(
            f"{len(problems)} problem(s), nothing was registered:\n" + "\n".join(problems[:200])
        )
    return specs


def sort_against_inventory(
    specs: list[HostSpec], inventory: list[Host], update_existing: bool
) -> tuple[list[HostSpec], list[tuple[str, HostSpec]], list[str]]:
    """(to create, to update as (id, spec), skipped hostnames); refuse IP clashes."""
    by_name = {h.hostname.lower(): h for h in inventory}
    by_ip = {h.ip: h for h in inventory}
    create, update, skipped, clashes = [], [], [], []
    for spec in specs:
        existing = by_name.get(spec.hostname.lower())
        owner = by_ip.get(spec.ip)
        if owner is not None and (existing is None or owner.id != existing.id):
            clashes.append(f"{spec.hostname}: ip {spec.ip} already belongs to {owner.hostname}")
        elif existing is None:
            create.append(spec)
        elif update_existing and _differs(existing, spec):
            update.append((existing.id, spec))
        else:
            skipped.append(spec.hostname)
    if clashes:
        raise InvalidHostRows(
            f"{len(clashes)} row(s) clash with the inventory, nothing was registered:\n"
            + "\n".join(clashes[:200])
        )
    return create, update, skipped


def _differs(host: Host, spec: HostSpec) -> bool:
    return any(getattr(host, f) != getattr(spec, f) for f in ("ip", "os", "owner", "tags"))
