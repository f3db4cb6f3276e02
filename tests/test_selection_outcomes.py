"""A typo is never "all healthy": against the lab, through the command line and a deployment's
run. A host named that the inventory lacks is refused up front with the closest names (exit 2,
one line naming --host); a selector that picks nothing ends `nothing_matched` (exit 3, a Failed
run named NothingMatched), distinct from a healthy fleet's "nothing to do" (exit 0).
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from prefect.settings import PREFECT_API_URL

from opsflow.blocks import OpsPlatform, Prometheus
from opsflow.flows.runbooks.restart_overloaded_hosts import restart_overloaded_hosts
from opsflow.flows.services.deployments import block_reference
from opsflow.opsapi import Transport
from tests.cli_in_process import opsflow_in_process
from tests.conftest import Lab
from tests.test_cli import LAB_BLOCKS, opsflow

RESTART = ("run", "restart-overloaded-hosts", *LAB_BLOCKS)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            (*RESTART, "--host", "lab-web-001"),
            "restart-overloaded-hosts: --host: 'lab-web-001' is not in the inventory of 10 hosts "
            "(did you mean lab-web-01",
        ),
        (  # one good name and one typo: nothing runs, not even on the good one
            (
                "run",
                "run-command",
                "--platform-block",
                "lab",
                "--command",
                "uptime",
                "--host",
                "lab-web-01",
                "--host",
                "lab-wbe-03",
            ),
            "run-command: --host: 'lab-wbe-03' is not in the inventory of 10 hosts "
            "(did you mean lab-web-03",
        ),  # fmt: skip
        (
            ("run", "load-report", *LAB_BLOCKS, "--host", "lab-db-2"),
            "load-report: --host: 'lab-db-2' is not in the inventory of 10 hosts "
            "(did you mean lab-db-02",
        ),
    ],
    ids=["restart", "run-command", "load-report"],
)
def test_a_misspelt_host_is_refused_up_front_with_the_closest_names(fresh_lab: Lab, argv, says):
    fresh_lab.overload(8.0, "lab-web-01")

    done = opsflow_in_process(*argv, api=PREFECT_API_URL.value())

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert output.startswith(says), output
    assert output.endswith("nothing was done"), output
    assert len(output.splitlines()) == 1 and "Traceback" not in output
    assert fresh_lab.jobs() == []


def test_a_tag_no_host_has_exits_3_and_the_log_counts_what_it_selected(fresh_lab: Lab):
    fresh_lab.overload(8.0, "lab-web-01")

    done = opsflow(*RESTART, "--tag", "nosuchtag")

    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "inventory: 10 hosts listed, 0 selected by tag nosuchtag" in output
    assert (
        "nothing matched: tag nosuchtag selected none of the 10 hosts listed; "
        "no host is tagged nosuchtag"
    ) in output
    assert "nothing to do" not in output and "Traceback" not in output
    assert fresh_lab.jobs() == []


@pytest.mark.parametrize(
    "argv",
    [
        (*RESTART, "--hostname-pattern", "nope-*"),
        ("run", "run-command", "--platform-block", "lab", "--command", "uptime", "--tag", "wbe"),
        ("run", "load-report", *LAB_BLOCKS, "--tag", "web", "--tag", "db"),
    ],
    ids=["pattern", "run-command", "load-report"],
)
def test_every_runbook_that_selects_says_nothing_matched_and_exits_3(fresh_lab: Lab, argv):
    done = opsflow_in_process(*argv, api=PREFECT_API_URL.value())

    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "nothing matched: " in output and "selected none of the 10 hosts listed" in output
    assert fresh_lab.jobs() == []


def test_nothing_matched_is_said_even_when_the_monitoring_is_down(fresh_lab: Lab):
    Prometheus(url="http://127.0.0.1:9", transport=Transport(retries=0)).save(
        "prometheus-down", overwrite=True
    )

    done = opsflow_in_process(
        "run", "restart-overloaded-hosts", "--platform-block", "lab",
        "--prometheus-block", "prometheus-down", "--tag", "nosuchtag",
        api=PREFECT_API_URL.value(),
    )  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "nothing matched: tag nosuchtag" in output and "no usable load data" not in output


def test_a_healthy_selection_is_still_nothing_to_do_and_exits_0(fresh_lab: Lab):
    done = opsflow_in_process(*RESTART, "--tag", "web", api=PREFECT_API_URL.value())

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "nothing to do: no host to restart: 0 of 5 hosts over 4" in output


def run_of_deployment(policy: dict[str, Any]) -> Any:
    """A run of a restart deployment given `policy`, run here as a worker would run it."""
    blocks = {  # as the UI's picker stores them
        "platform": block_reference(OpsPlatform.load("lab")),
        "prometheus": block_reference(Prometheus.load("lab")),
    }
    deployment_id = restart_overloaded_hosts.to_deployment(
        name="typo-check", parameters={"policy": blocks}
    ).apply()
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"policy": policy}
        )
    return run_flow(
        restart_overloaded_hosts,
        flow_run=flow_run,
        parameters={"policy": policy},
        return_type="state",
    )


def test_a_deployments_run_with_a_typo_or_nothing_matched_ends_failed_saying_so(fresh_lab: Lab):
    fresh_lab.overload(8.0, "lab-web-01")

    typo = run_of_deployment({"selector": {"hostnames": ["lab-web-001"]}})
    nothing = run_of_deployment({"selector": {"tags": ["nosuchtag"]}})

    assert typo.is_failed() and typo.name == "Failed"
    assert typo.message.startswith(
        "selector.hostnames: 'lab-web-001' is not in the inventory of 10 hosts "
        "(did you mean lab-web-01"
    ), typo.message
    assert "encountered an exception" not in typo.message
    assert nothing.is_failed() and nothing.name == "NothingMatched"
    assert nothing.message == (
        "nothing matched: tag nosuchtag selected none of the 10 hosts listed; "
        "no host is tagged nosuchtag"
    )
    assert nothing.result(raise_on_failure=False).outcome == "nothing_matched"
    assert fresh_lab.jobs() == []
