"""The lab's `/metrics` page: kept between scrapes, yet every scrape shows what a render would."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from opsflow.lab.hosts import RECOVERY_SECONDS
from opsflow.lab.routes_metrics import MetricsPage, render_page
from opsflow.lab.store import LabStore

WEB = 'node_load1{instance="10.0.0.1:9100",hostname="lab-web-01"}'
IDLE = re.compile(r'cpu="0",mode="idle"} ([0-9.]+)')
ANY_IDLE = re.compile(r'(mode="idle"}) \S+')  # a number, or the page's mark for one


@pytest.fixture
def lab(tmp_path: Path) -> tuple[LabStore, int]:
    store = LabStore(tmp_path / "platform.db")
    specs = [{"hostname": "lab-web-01", "ip": "10.0.0.1"}, {"hostname": "lab-db-01", "ip": "::1"}]
    web, _ = store.create_hosts(specs, [0.5, 0.7])
    return store, web


def load(page: str) -> float:
    return float(re.search(re.escape(WEB) + r" (\S+)", page).group(1))


def without_idle(page: str) -> str:
    return ANY_IDLE.sub(r"\1", page)


def test_every_scrape_shows_what_a_render_would_and_the_idle_counters_move_on(lab):
    store, web = lab
    page = MetricsPage(store)
    first = page.text()
    assert load(first) == 0.5
    assert 'instance="[::1]:9100"' in first
    time.sleep(0.25)
    again = page.text()
    assert float(IDLE.search(again).group(1)) > float(IDLE.search(first).group(1))
    assert without_idle(again) == without_idle(render_page(store.host_states(), time.time()))


def test_a_change_of_state_is_on_the_next_scrape(lab):
    store, web = lab
    page = MetricsPage(store)
    page.text()
    store.set_state(web, overload=8.0, overloaded_at=time.time())
    assert load(page.text()) == 8.0
    store.set_state(web, metrics_fault="absent")
    assert WEB not in page.text()


def test_a_restarted_host_falls_back_scrape_by_scrape_then_stays_at_its_base(lab):
    store, web = lab
    page = MetricsPage(store)
    store.set_state(web, overload=8.0, overloaded_at=time.time() - 10)
    store.set_state(web, restarted_at=time.time() - RECOVERY_SECONDS + 0.8)  # 0.8 s to go
    falling = []
    for _ in range(3):  # no write between these scrapes: time alone moves the load
        falling.append(load(page.text()))
        time.sleep(0.2)
    assert 0.5 < falling[2] < falling[1] < falling[0] < 8.0
    time.sleep(0.4)
    assert load(page.text()) == 0.5
