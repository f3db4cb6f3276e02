"""Property-based tests (hypothesis) for host validation and the CSV import.

What must hold for every input, not only the rows someone thought of: a valid host is accepted
as written, an invalid one is refused with its field named, a CSV file reads back exactly what
was written, and any file at all ends in either host specs or one clear `ConfigurationError`
listing every bad row — never a pandas or pydantic traceback, never a partial result.
"""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from opsflow.opsapi import ConfigurationError
from opsflow.opsapi.models import HostSpec
from opsflow.tasks.host_import import InvalidHostRows, read_host_rows

LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
HOSTNAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
IPS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40
)
TAG = st.from_regex(r"[A-Za-z0-9_.:=-]{1,20}", fullmatch=True)


@st.composite
def host_rows(draw: st.DrawFn, min_size: int = 1, max_size: int = 30) -> list[dict]:
    """Rows with distinct hostnames and IPs (the import refuses repeats)."""
    names = draw(st.lists(HOSTNAMES, min_size=min_size, max_size=max_size, unique_by=str.lower))
    ips = draw(st.lists(IPS, min_size=len(names), max_size=len(names), unique=True))
    return [
        {
            "hostname": name,
            "ip": ip,
            "os": draw(st.none() | TEXT.map(str.strip).filter(bool)),
            "owner": draw(st.none() | TEXT.map(str.strip).filter(bool)),
            "tags": draw(st.lists(TAG, max_size=4, unique=True)),
        }
        for name, ip in zip(names, ips, strict=True)
    ]


def write_csv(rows: list[dict], directory: str) -> str:
    frame = pd.DataFrame(rows, columns=["hostname", "ip", "os", "owner", "tags"])
    frame["tags"] = frame["tags"].map(lambda tags: ";".join(tags or []))
    path = Path(directory) / "hosts.csv"
    frame.to_csv(path, index=False)
    return str(path)


@given(hostname=HOSTNAMES, ip=IPS)
def test_every_valid_hostname_and_ip_is_accepted_as_written(hostname, ip):
    spec = HostSpec(hostname=hostname, ip=f"  {ip} ")

    assert spec.hostname == hostname
    assert spec.ip == str(ipaddress.ip_address(ip))


@given(ip=st.text(max_size=60))
def test_anything_that_is_not_an_ip_is_refused_naming_the_ip_field(ip):
    try:
        ipaddress.ip_address(ip.strip())
        assume(False)
    except ValueError:
        pass

    with pytest.raises(ValidationError) as refused:
        HostSpec(hostname="web-01", ip=ip)

    assert [e["loc"] for e in refused.value.errors()] == [("ip",)]
    assert "is not an IPv4 or IPv6 address" in str(refused.value)


@given(hostname=st.text(max_size=80))
def test_a_hostname_outside_dns_rules_is_refused_naming_the_hostname_field(hostname):
    labels = hostname.split(".")
    assume(
        not hostname
        or len(hostname) > 253
        or any(
            not label
            or len(label) > 63
            or not label.isascii()
            or not label.replace("-", "").isalnum()
            or label.startswith("-")
            or label.endswith("-")
            for label in labels
        )
    )

    with pytest.raises(ValidationError) as refused:
        HostSpec(hostname=hostname, ip="10.0.0.1")

    assert [e["loc"] for e in refused.value.errors()] == [("hostname",)]


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=host_rows())
def test_a_csv_file_reads_back_exactly_what_was_written(rows):
    with tempfile.TemporaryDirectory() as directory:
        specs = read_host_rows(csv_path=write_csv(rows, directory))

    assert [s.model_dump() for s in specs] == [
        {**row, "ip": str(ipaddress.ip_address(row["ip"]))} for row in rows
    ]


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    rows=host_rows(min_size=2),
    broken=st.sets(st.integers(0, 29), min_size=1, max_size=5),
    how=st.sampled_from(["ip", "hostname", "repeat"]),
)
def test_every_bad_row_is_named_with_its_line_and_field_and_nothing_is_returned(rows, broken, how):
    broken = {i for i in broken if 0 < i < len(rows)}
    assume(broken)
    for i in broken:
        if how == "ip":
            rows[i]["ip"] = "999.1.1.1"
        elif how == "hostname":
            rows[i]["hostname"] = f"-bad_{i}"
        else:
            rows[i]["hostname"] = rows[0]["hostname"].upper()

    with tempfile.TemporaryDirectory() as directory, pytest.raises(InvalidHostRows) as refused:
        read_host_rows(csv_path=write_csv(rows, directory))

    message = str(refused.value)
    if len(broken) > 1:
        assert f"{len(broken)} problems, nothing was registered" in message
    else:
        assert message.endswith("; nothing was registered")
    field = "ip" if how == "ip" else "hostname"
    for i in broken:
        assert f"row {i + 2}: {field}:" in message  # line 1 is the header
    lines = message.splitlines()
    row_lines = lines[1:] if len(broken) > 1 else lines  # one problem is one line
    named = {int(line.split(":")[0].split()[1]) for line in row_lines}
    assert named == {i + 2 for i in broken}


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_file_at_all_ends_in_specs_or_one_clear_error(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "hosts.csv"
        path.write_bytes(content)
        try:
            specs = read_host_rows(csv_path=str(path))
        except ConfigurationError as refused:
            assert str(refused).strip()
            assert "Traceback" not in str(refused)
        else:
            assert all(isinstance(s, HostSpec) for s in specs)


def test_a_spreadsheet_export_with_byte_order_mark_and_crlf_reads(tmp_path):
    path = tmp_path / "hosts.csv"
    path.write_bytes("\ufeffhostname,ip,tags\r\nweb-01,10.0.0.1,web;prod\r\n".encode())

    [spec] = read_host_rows(csv_path=str(path))

    assert (spec.hostname, spec.ip, spec.tags) == ("web-01", "10.0.0.1", ["web", "prod"])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty: its first line must be the header"),
        (b"hostname,ip\n\xff\xfe,10.0.0.1\n", "is not UTF-8 text (byte 12)"),
        (b'hostname,ip\n"web-01,10.0.0.1\n', "is not a valid CSV file"),
    ],
)
def test_an_unreadable_file_is_refused_saying_why(tmp_path, content, says):
    path = tmp_path / "hosts.csv"
    path.write_bytes(content)

    with pytest.raises(InvalidHostRows, match="csv_path .*hosts.csv") as refused:
        read_host_rows(csv_path=str(path))

    assert says in str(refused.value)
