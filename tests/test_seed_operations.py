"""The seed's four operations, through the tasks, against the lab over HTTPS."""

from __future__ import annotations

import pytest

from opsflow.blocks import OpsPlatform, Prometheus
from opsflow.opsapi import Conflict, HostSelector, HostSpec, InvalidInput, NotFound
from opsflow.tasks import (
    create_host,
    delete_host,
    execute_job,
    get_host,
    list_hosts,
    query_instant,
    update_host,
    wait_for_job,
)


def test_list_hosts_follows_every_page(fresh_lab):
    platform = OpsPlatform.load("lab")
    platform.page_size = 3  # 10 hosts -> 4 pages

    hosts = list_hosts(platform)

    assert sorted(h.hostname for h in hosts) == sorted(
        h["hostname"] for h in fresh_lab.admin.hosts()
    )
    assert len({h.id for h in hosts}) == 10


def test_list_hosts_applies_the_selector(fresh_lab):
    hosts = list_hosts(
        OpsPlatform.load("lab"), HostSelector(tags=["web"], hostname_pattern="*-0[1-5]")
    )

    assert sorted(h.hostname for h in hosts) == ["lab-web-01", "lab-web-03", "lab-web-05"]


def test_create_host_then_duplicate_is_a_conflict(fresh_lab):
    platform = OpsPlatform.load("lab")
    spec = HostSpec(hostname="db-server-01", ip="127.10.9.15", os="CentOS 7", owner="Ops Team")

    created = create_host(platform, spec)

    assert get_host(platform, created.id).hostname == "db-server-01"
    with pytest.raises(Conflict, match="409 on POST"):
        create_host(platform, spec)
    assert update_host(platform, created.id, {"owner": "SRE"}).owner == "SRE"
    delete_host(platform, created.id)
    with pytest.raises(NotFound):
        get_host(platform, created.id)


def test_platform_rejects_invalid_host_naming_the_field(fresh_lab):
    client = OpsPlatform.load("lab").get_client()

    with pytest.raises(InvalidInput, match="ip"):
        client.request("POST", "/api/v1/hosts", json={"hostname": "ok-01", "ip": "999.1.1.1"})


def test_execute_command_on_many_hosts_really_runs_it(fresh_lab):
    platform = OpsPlatform.load("lab")
    hosts = list_hosts(platform)[:4]

    job_id = execute_job(platform, [h.id for h in hosts], "echo $LAB_HOSTNAME; pwd", timeout=10)
    job = wait_for_job(platform, job_id, max_wait_seconds=30, poll_frequency_seconds=0.2)

    assert job.status.value == "success"
    for host in hosts:
        result = job.result_for(host.id)
        assert result.exit_code == 0
        assert result.stdout.splitlines()[0] == host.hostname
        assert result.stdout.splitlines()[1].endswith(f"/hosts/{host.hostname}")


def test_job_reports_partial_failure_per_host(fresh_lab):
    platform = OpsPlatform.load("lab")
    hosts = list_hosts(platform)[:2]
    command = f'[ "$LAB_HOSTNAME" = {hosts[0].hostname} ] || {{ echo boom >&2; exit 3; }}'

    job = wait_for_job(platform, execute_job(platform, [h.id for h in hosts], command), 30, 0.2)

    assert job.status.value == "partial"
    assert job.result_for(hosts[1].id).exit_code == 3
    assert job.result_for(hosts[1].id).stderr.strip() == "boom"


def test_query_prometheus_returns_every_host_as_a_dataframe(fresh_lab):
    frame = query_instant(Prometheus.load("lab"), "node_load1")

    assert len(frame) == 10
    assert set(frame["instance"]) == {f"{h['ip']}:9100" for h in fresh_lab.admin.hosts()}
    assert frame["value"].dtype == float


def test_platform_passes_prometheus_queries_through(fresh_lab):
    client = OpsPlatform.load("lab").get_client()

    answer = client.request(
        "GET", "/api/v1/prometheus/query", params={"query": "count(node_load1)"}
    )

    assert answer["status"] == "success"
    assert answer["data"]["result"][0]["value"][1] == "10"
