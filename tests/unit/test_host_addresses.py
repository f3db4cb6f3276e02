"""A host's address as the platform lists it: canonical dotted IPv4 is taken as it is (the
fast path of a 100,000-host listing), everything else goes through ipaddress and comes out in
its normal form, or is refused. Both paths must agree on every address."""

from __future__ import annotations

import itertools
from ipaddress import ip_address

import pytest
from pydantic import ValidationError

from opsflow.opsapi.models import Host

OCTETS = [
    "0",
    "00",
    "01",
    "7",
    "9",
    "10",
    "010",
    "99",
    "100",
    "199",
    "200",
    "249",
    "250",
    "255",
    "256",
    "300",
    "1000",
    "-1",
    "",
    " 1",
    "a",
]


def normal_form(value: str) -> str | None:
    try:
        return str(ip_address(value.strip()))
    except ValueError:
        return None


@pytest.mark.parametrize("first", OCTETS)
def test_every_dotted_address_is_what_ipaddress_makes_of_it(first):
    for rest in itertools.product(["0", "255", "010", "256", "1"], repeat=3):
        value = ".".join((first, *rest))
        expected = normal_form(value)
        host = {"id": "1", "hostname": "web-01", "ip": value}
        if expected is None:
            with pytest.raises(ValidationError, match="is not an IPv4 or IPv6 address"):
                Host.model_validate(host)
        else:
            assert Host.model_validate(host).ip == expected


@pytest.mark.parametrize(
    ("given", "kept"),
    [(" 10.0.0.7 ", "10.0.0.7"), ("::FFFF:10.0.0.7", "::ffff:a00:7"), ("FE80::1", "fe80::1")],
)
def test_other_forms_come_out_normal(given, kept):
    assert Host.model_validate({"id": "1", "hostname": "web-01", "ip": given}).ip == kept
