"""The other runbooks against the lab: load report, register hosts, run command, disk cleanup."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from opsflow.blocks import OpsPlatform
from opsflow.flows.runbooks.disk_cleanup import DiskCleanupParams, disk_cleanup
from opsflow.flows.runbooks.load_report import LoadReportParams, load_report
from opsflow.flows.runbooks.register_hosts import RegisterHostsParams, register_hosts
from opsflow.flows.runbooks.run_command import RunCommandParams, run_command
from opsflow.opsapi import CommandNotAllowed, InvalidHostRows

LAB = {"platform": "lab"}


def test_load_report_flags_overloaded_hosts_per_cpu_and_writes_csv(fresh_lab, tmp_path):
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-04")
    csv = tmp_path / "load.csv"

    report = load_report(LoadReportParams(csv_path=str(csv), prometheus="lab", **LAB))

    assert (report.hosts, report.critical, report.warning, report.ok) == (10, 2, 0, 8)
    assert {row["hostname"] for row in report.worst[:2]} == {"lab-db-04", "lab-web-01"}
    table = pd.read_csv(csv)
    assert len(table) == 10
    critical = table[table["status"] == "critical"]
    assert set(critical["hostname"]) == {"lab-web-01", "lab-db-04"}
    assert critical["load_per_cpu"].tolist() == [2.0, 2.0]


HOSTS_CSV = """hostname,ip,os,owner,tags
app-01,127.10.5.1,Debian 12,payments,web;prod
app-02,127.10.5.2,Debian 12,payments,web
app-03,::1,Debian 12,payments,
"""


def test_register_hosts_creates_then_skips_then_updates(fresh_lab, tmp_path):
    csv = tmp_path / "hosts.csv"
    csv.write_text(HOSTS_CSV)

    first = register_hosts(RegisterHostsParams(csv_path=str(csv), **LAB))
    second = register_hosts(RegisterHostsParams(csv_path=str(csv), **LAB))
    csv.write_text(
        HOSTS_CSV.replace("app-02,127.10.5.2,Debian 12,payments", "app-02,127.10.5.2,Debian 12,sre")
    )
    third = register_hosts(RegisterHostsParams(csv_path=str(csv), update_existing=True, **LAB))

    assert first.created == ["app-01", "app-02", "app-03"]
    assert second.unchanged == ["app-01", "app-02", "app-03"] and second.created == []
    assert third.updated == ["app-02"] and third.unchanged == ["app-01", "app-03"]
    client = OpsPlatform.load("lab").get_client()
    [app02] = client.list_hosts(hostname="app-02")
    assert app02.owner == "sre"
    assert client.list_hosts(hostname="app-01")[0].tags == ["web", "prod"]


def test_register_hosts_refuses_a_file_with_any_bad_row_and_creates_nothing(fresh_lab, tmp_path):
    csv = tmp_path / "hosts.csv"
    csv.write_text(
        "hostname,ip\nok-01,127.10.6.1\nbad_name!,127.10.6.2\nok-03,999.1.1.1\nok-01,127.10.6.4\n"
    )

    with pytest.raises(ValidationError) as caught:  # refused with the parameters, up front
        RegisterHostsParams(csv_path=str(csv), **LAB)
    with pytest.raises(InvalidHostRows) as also_in_the_run:  # and by the run itself
        register_hosts.fn(RegisterHostsParams.model_construct(csv_path=str(csv), **LAB))

    message = str(caught.value)
    assert str(also_in_the_run.value) in message
    assert "row 3: hostname" in message
    assert "row 4: ip: '999.1.1.1' is not an IPv4 or IPv6 address" in message
    assert "row 5: hostname: 'ok-01' repeats row 2" in message
    assert len(OpsPlatform.load("lab").get_client().list_hosts()) == 10


def test_register_hosts_refuses_an_ip_that_belongs_to_another_host(fresh_lab):
    taken = fresh_lab.admin.hosts()[0]

    with pytest.raises(
        InvalidHostRows, match=f"ip {taken['ip']} already belongs to {taken['hostname']}"
    ):
        register_hosts(RegisterHostsParams(rows=[{"hostname": "new-01", "ip": taken["ip"]}], **LAB))

    assert len(OpsPlatform.load("lab").get_client().list_hosts()) == 10


def test_run_command_runs_on_the_selected_hosts_in_batches(fresh_lab):
    state = run_command(
        RunCommandParams(
            command="echo $LAB_HOSTNAME", selector={"tags": ["web"]}, batch_size=2, **LAB
        ),
        return_state=True,
    )

    result = state.result()
    assert sorted(r.hostname for r in result.hosts) == [f"lab-web-0{n}" for n in (1, 3, 5, 7, 9)]
    assert all(r.result == "succeeded" and r.stdout.strip() == r.hostname for r in result.hosts)
    assert len({r.job_id for r in result.hosts}) == 3  # 5 hosts in batches of 2


@pytest.mark.parametrize(
    "command",
    [
        "uptime; rm -rf /",
        "uptime && reboot",
        "uptime | sh",
        "uptime $(reboot)",
        "uptime `reboot`",
        "uptime\nreboot",
    ],
)
def test_allowlist_refuses_shell_tricks_before_anything_runs(fresh_lab, command):
    with pytest.raises(ValidationError, match="CommandNotAllowed|forbids|matches no allowlist"):
        RunCommandParams(command=command, allowlist=[r"uptime.*"], all_hosts=True, **LAB)
    # and the flow itself checks again, for parameters built without validation
    unchecked = RunCommandParams.model_construct(
        command=command, allowlist=[r"uptime.*"], all_hosts=True, **LAB
    )
    with pytest.raises(CommandNotAllowed):
        run_command.fn(unchecked)

    assert fresh_lab.jobs() == []


def test_empty_selector_needs_all_hosts():
    with pytest.raises(ValueError, match="selector is empty"):
        RunCommandParams(command="uptime")


def test_disk_cleanup_cleans_full_hosts_and_verifies(fresh_lab):
    for name in ("lab-web-03", "lab-db-08"):
        fresh_lab.admin.fill_disk(name, 6)
    from tests.conftest import wait_until

    wait_until(
        lambda: len(fresh_lab.prometheus_query(DiskCleanupParams().usage_query, 85)) == 2,
        20,
        "Prometheus to see the full disks",
    )

    state = disk_cleanup(DiskCleanupParams(prometheus="lab", **LAB), return_state=True)

    result = state.result()
    assert result.outcome == "completed"
    assert sorted(result.verified) == ["lab-db-08", "lab-web-03"]
    assert all(round(h.value_before, 1) == 90.0 for h in result.hosts)
    assert all(round(h.value_after, 1) == 30.0 for h in result.hosts)
    assert {h["hostname"]: h["disk_used"] for h in fresh_lab.admin.hosts() if h["disk_used"]} == {}


def test_run_command_cancels_a_job_the_platform_never_finishes(fresh_lab):
    fresh_lab.admin.hang_restart("lab-web-01")
    try:
        state = run_command(
            RunCommandParams(
                command="systemctl restart nginx",
                selector={"hostname_pattern": "lab-web-01"},
                job_timeout_seconds=1,
                **LAB,
            ),
            return_state=True,
        )
    finally:
        fresh_lab.admin.hang_restart("lab-web-01", False)

    assert state.is_failed()
    [result] = state.result(raise_on_failure=False).hosts
    assert result.hostname == "lab-web-01" and result.result == "command failed"
    assert result.detail.startswith("cancelled")
    [job] = fresh_lab.jobs()
    assert job["status"] == "cancelled"


def test_run_command_leaves_a_host_another_run_holds_alone(fresh_lab):
    from prefect import flow

    from opsflow.tasks.host_locks import host_locks

    web01 = next(h for h in fresh_lab.admin.hosts() if h["hostname"] == "lab-web-01")

    @flow
    def while_locked() -> object:
        with host_locks([str(web01["id"])]):
            state = run_command(
                RunCommandParams(
                    command="echo ran", selector={"hostname_pattern": "lab-web-0[13]"}, **LAB
                ),
                return_state=True,
            )
            return state.result(raise_on_failure=False)

    results = {r.hostname: r for r in while_locked().hosts}
    assert results["lab-web-01"].result == "not touched"
    assert results["lab-web-01"].detail == "locked by another run"
    assert results["lab-web-03"].stdout == "ran\n"


def test_run_command_over_the_cap_runs_nothing_and_a_dry_run_names_the_hosts(fresh_lab):
    over = run_command(
        RunCommandParams(command="uptime", all_hosts=True, max_hosts=3, **LAB), return_state=True
    )
    dry = run_command(
        RunCommandParams(command="uptime", selector={"tags": ["db"]}, dry_run=True, **LAB),
        return_state=True,
    )

    assert over.is_failed()
    assert "10 hosts selected exceeds the blast-radius cap of 3" in over.message
    assert dry.is_completed() and "would run the command on 5 hosts" in dry.message
    assert fresh_lab.jobs() == []


def test_register_hosts_names_what_would_change_and_a_dry_run_says_would(fresh_lab, tmp_path):
    csv = tmp_path / "hosts.csv"
    csv.write_text(HOSTS_CSV)
    register_hosts(RegisterHostsParams(csv_path=str(csv), **LAB))
    csv.write_text(
        HOSTS_CSV.replace("app-02,127.10.5.2,Debian 12,payments", "app-02,127.10.5.2,Debian 12,sre")
        + "app-04,127.10.5.4,Debian 12,sre,db\n"
    )

    dry = register_hosts(RegisterHostsParams(csv_path=str(csv), dry_run=True, **LAB))
    differ = register_hosts(RegisterHostsParams(csv_path=str(csv), **LAB))

    assert dry.summary.startswith("would create 1 host, would update 0")
    assert {r["hostname"]: r["action"] for r in dry.rows}["app-04"] == "would be created"
    assert differ.differ == ["app-02"]
    assert {r["hostname"]: r["changes"] for r in differ.rows}["app-02"] == "owner: payments -> sre"
    assert "1 differ (not updated: --update-existing changes them)" in differ.summary
    client = OpsPlatform.load("lab").get_client()
    assert client.list_hosts(hostname="app-02")[0].owner == "payments"  # not changed


def test_register_hosts_takes_an_inventory_export_with_extra_columns_when_asked(
    fresh_lab, tmp_path
):
    csv = tmp_path / "export.csv"
    csv.write_text("hostname,ip,rack,serial\nexp-01,127.10.7.1,r12,SN123\n")

    with pytest.raises(ValidationError, match=r"unknown column\(s\) \['rack', 'serial'\]"):
        RegisterHostsParams(csv_path=str(csv), **LAB)
    result = register_hosts(
        RegisterHostsParams(csv_path=str(csv), ignore_extra_columns=True, **LAB)
    )

    assert result.created == ["exp-01"]


def test_a_selector_that_matches_no_host_says_nothing_matched(fresh_lab):
    from opsflow.flows.runbooks.restart_overloaded_hosts import (
        RestartPolicy,
        restart_overloaded_hosts,
    )

    fresh_lab.overload(8.0, "lab-web-01")
    restart = restart_overloaded_hosts(
        RestartPolicy(selector={"tags": ["web", "db"]}, prometheus="lab", **LAB),
        return_state=True,
    )
    command = run_command(
        RunCommandParams(command="uptime", selector={"tags": ["nope"]}, **LAB), return_state=True
    )

    # Not "nothing to do" (a healthy fleet): a Failed run of its own, never a silent green one.
    assert restart.is_failed() and restart.name == "NothingMatched"
    assert restart.message == (
        "nothing matched: tags web and db selected none of the 10 hosts listed"
    )
    assert command.is_failed() and command.name == "NothingMatched"
    assert command.message == (
        "nothing matched: tag nope selected none of the 10 hosts listed; no host is tagged nope"
    )
    assert restart.result(raise_on_failure=False).outcome == "nothing_matched"
    assert fresh_lab.jobs() == []


def test_a_command_that_echoes_a_password_leaves_it_nowhere(fresh_lab):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    from tests.conftest import wait_until

    password = "hunter2-echoed-0451"
    state = run_command(
        RunCommandParams(
            command=f"echo DB_PASSWORD={password}; echo --password {password}",
            selector={"hostname_pattern": "lab-web-01"},
            **LAB,
        ),
        return_state=True,
    )
    run_id = state.state_details.flow_run_id

    async def read(kind):
        async with get_client() as client:
            if kind == "parameters":
                return str((await client.read_flow_run(run_id)).parameters)
            if kind == "logs":
                found = await client.read_logs(
                    LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
                )
                return [log.message for log in found]
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
            return [str(a.data) + str(a.description) for a in found]

    result = state.result()
    [host] = result.hosts
    assert host.stdout == "DB_PASSWORD=***\n--password ***\n"  # the output is still useful
    logs = wait_until(lambda: asyncio.run(read("logs")), 30, "the run's logs")
    artifacts = asyncio.run(read("artifacts"))
    audit = fresh_lab.config.audit_log.read_text()
    for place, text in (
        ("result", result.model_dump_json()),
        ("logs", "\n".join(logs)),
        ("artifacts", "\n".join(artifacts)),
        ("audit log", audit),
        ("flow-run parameters", asyncio.run(read("parameters"))),
    ):
        assert password not in text, place
    assert "DB_PASSWORD=***" in audit
