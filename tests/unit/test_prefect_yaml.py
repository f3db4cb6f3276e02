"""prefect.yaml (what `opsflow init` writes and `prefect deploy --all` reads) deploys each
runbook exactly as `opsflow deploy` and `opsflow serve` do: the same entrypoint, description,
tags, schedules (paused) and alert trigger. A change to one path that the other lacks fails
here."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsflow.flows.services.deployments import deployments

SHIPPED = yaml.safe_load((files("opsflow.flows.services") / "prefect.yaml").read_text())
IN_CODE = {d.name: d for d in deployments()}


def test_the_repository_file_is_the_shipped_one() -> None:
    root = Path(__file__).parents[2] / "prefect.yaml"
    assert yaml.safe_load(root.read_text()) == SHIPPED


def test_every_runbook_is_in_the_file() -> None:
    assert set(IN_CODE) <= {d["name"] for d in SHIPPED["deployments"]}


@pytest.mark.parametrize("name", sorted(IN_CODE))
def test_the_file_deploys_it_as_the_code_does(name: str) -> None:
    [in_file] = [d for d in SHIPPED["deployments"] if d["name"] == name]
    made = IN_CODE[name]
    module, function = in_file["entrypoint"].split(":")
    assert f"{module}.{function}" == made.entrypoint
    assert in_file["description"] == made.description
    assert in_file["tags"] == made.tags
    assert schedules(in_file) == [
        {"cron": s.schedule.cron, "timezone": s.schedule.timezone, "active": s.active}
        for s in made.schedules or []
    ]
    assert all(s["active"] is False for s in schedules(in_file))  # deploying arms nothing
    assert [
        {k: t[k] for k in ("name", "match", "expect", "parameters")}
        for t in in_file.get("triggers", [])
    ] == [
        {
            "name": t.name,
            "match": t.match.model_dump(),
            "expect": sorted(t.expect),
            "parameters": t.parameters,
        }
        for t in made.triggers
    ]


def schedules(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"cron": s["cron"], "timezone": s["timezone"], "active": s["active"]}
        for s in deployment.get("schedules") or []
    ]
