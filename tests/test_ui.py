"""The Prefect UI, as an ops engineer uses it, proven by clicking: a real `prefect server start`,
`opsflow serve`, and Playwright driving Debian's Chromium (headless) through the run forms, the
run pages, the approval form and the artifacts; what happened is checked in the lab.

Chromium only ever talks to 127.0.0.1: every other host name resolves to nothing
(`--host-resolver-rules`), and each test asserts that the page asked for nothing else.
Screenshots of the key steps land in each test's tmp_path; with `OPSFLOW_UPDATE_SCREENSHOTS=1`
a passing test copies its docs ones: docs/ui-deployment-form.png (load-report's run form),
docs/ui-load-report-artifact.png, docs/ui-approval-form.png (a paused run's approval form) and
docs/ui-flow-run.png (the approved run, completed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, Response, expect, sync_playwright
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr

from opsflow.blocks import WeComWebhook
from opsflow.flows.runbooks.disk_cleanup import USAGE_QUERY
from tests.chat_receiver import ChatReceiver, chat_receiver
from tests.conftest import Lab, wait_until
from tests.test_disk_cleanup import cleanups, fill

CLEANUP = "find var/log -type f -mtime +7 -delete"

DOCS = Path(__file__).parent.parent / "docs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # Belt and braces for "only 127.0.0.1": no other host name resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1400, "height": 1000}
UI_TIMEOUT_MS = 30_000  # a page, a form field, a dialog
expect.set_options(timeout=UI_TIMEOUT_MS)
RUN_TIMEOUT_S = 120  # a run from submit to its end (the approved one restarts and verifies)
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
RESTART = "restart-overloaded-hosts"
LOAD_REPORT = "load-report"
REMEDIATE = "remediate"
SUMMARY = "restart-summary"  # the restart report's markdown artifact
UI_CHAT = "ui-chat"  # a WeCom block the form's notify picker offers


# --- the servers: one `opsflow serve` and one browser for every browser test -----------------


@dataclass
class Served:
    """`prefect server start` with the lab's blocks and opsflow's runbooks served."""

    url: str
    deployments: dict[str, dict[str, Any]]
    chat: ChatReceiver

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def run(self, run_id: str) -> dict[str, Any]:
        return requests.get(f"{self.api}/flow_runs/{run_id}", timeout=5).json()

    def wait_for_state(
        self, run_id: str, *types: str, timeout: float = RUN_TIMEOUT_S
    ) -> dict[str, Any]:
        """The run's state once it is one of `types` (or ended otherwise: then fail, loudly)."""

        def reached() -> dict[str, Any] | None:
            state = self.run(run_id)["state"]
            if state["type"] in types:
                return state
            assert state["type"] not in TERMINAL, f"run ended {state['type']}: {state['message']}"
            return None

        return wait_until(reached, timeout, f"run {run_id} to be {' or '.join(types)}")

    def logs(self, run_id: str) -> list[str]:
        """The run's log lines as stored by the server (what the run page shows)."""
        answer = requests.post(
            f"{self.api}/logs/filter",
            json={"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC"},
            timeout=5,
        )
        assert answer.ok, answer.text
        return [entry["message"] for entry in answer.json()]

    def block_document_id(self, slug: str, name: str) -> str:
        answer = requests.get(
            f"{self.api}/block_types/slug/{slug}/block_documents/name/{name}", timeout=5
        )
        assert answer.ok, answer.text
        return answer.json()["id"]


# Class-scoped: one `opsflow serve` and one Chromium for all of TestInTheBrowser, both gone
# before `prefect deploy --all` (the last test) rewrites the same deployments for a work pool.
@pytest.fixture(scope="class")
def served(
    lab: Lab, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    api = f"{prefect_server}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    up = subprocess.run(
        [sys.executable, "-m", "opsflow.lab", "up", "--dir", str(lab.config.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr  # the lab's blocks, saved in this server
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "opsflow.flows", "serve", RESTART, LOAD_REPORT, REMEDIATE]
            + ["--no-schedules", "--platform-block", "lab", "--prometheus-block", "lab"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def deployed(name: str) -> dict[str, Any] | None:
            """The deployment once its runner polls for runs (the UI shows it "Ready")."""
            assert serve.poll() is None, log_path.read_text()[-3000:]
            answer = requests.get(f"{api}/deployments/name/{name}/{name}", timeout=5)
            return answer.json() if answer.ok and answer.json()["status"] == "READY" else None

        deployments = {
            name: wait_until(lambda n=name: deployed(n), 120, f"opsflow serve to deploy {name}")
            for name in (RESTART, LOAD_REPORT, REMEDIATE)
        }
        with chat_receiver() as chat:
            with temporary_settings({PREFECT_API_URL: api}):  # saved in the served server
                WeComWebhook(url=chat.url, key=SecretStr("wecom-key-ui")).save(
                    UI_CHAT, overwrite=True
                )
            yield Served(prefect_server, deployments, chat)
    finally:
        serve.terminate()
        serve.wait(30)
        time.sleep(0.5)


@pytest.fixture(scope="class")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed: run scripts/setup.sh"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A fresh context (no cookies, no storage) whose page may only reach 127.0.0.1."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    elsewhere: list[str] = []

    def check(url: str) -> None:
        if not re.match(r"(https?|wss?)://127\.0\.0\.1[:/]|(blob|data):", url):
            elsewhere.append(url)

    context.on("request", lambda request: check(request.url))
    context.on("response", _print_failed_response)  # in the captured output of a failing test
    page = context.new_page()
    page.on("websocket", lambda websocket: check(websocket.url))
    page.on("pageerror", lambda error: print(f"UI's script failed: {error}"))
    page.on(
        "console",
        lambda message: print(f"UI's console: {message.text}") if message.type == "error" else None,
    )
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):  # where the page was, when a test fails
            page.screenshot(path=tmp_path / "last-page.png")
        context.close()
    assert elsewhere == [], f"the browser asked for more than 127.0.0.1: {elsewhere}"


def _print_failed_response(response: Response) -> None:
    if response.status >= 400:
        try:
            body = response.text()[:2000]
        except Exception as error:  # noqa: BLE001 - the body may be gone already
            body = repr(error)
        print(
            f"UI's request failed: {response.request.method} {response.url}: "
            f"{response.status} {body}"
        )


@pytest.fixture
def shots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path)


class TestInTheBrowser:
    """Run forms, run pages, the approval form and artifacts, clicked through."""

    def test_a_typo_in_prefect_deployment_run_is_refused_before_any_run(
        self, served: Served, fresh_lab: Lab
    ) -> None:
        fresh_lab.overload(8.0, "lab-web-01")
        runs_before = requests.post(f"{served.api}/flow_runs/count", json={}, timeout=5).json()

        done = subprocess.run(
            [sys.executable, "-m", "prefect", "deployment", "run", f"{RESTART}/{RESTART}"]
            + ["--params", '{"policy": {"dryrun": true, "tag": ["web"]}}'],
            env={**os.environ, "PREFECT_API_URL": served.api},
            capture_output=True,
            text=True,
            timeout=120,
        )

        output = done.stdout + done.stderr
        assert done.returncode != 0, output
        assert "'dryrun', 'tag' were unexpected" in output  # Prefect names both keys
        runs_after = requests.post(f"{served.api}/flow_runs/count", json={}, timeout=5).json()
        assert runs_after == runs_before  # no run was created
        assert fresh_lab.jobs() == []

    def test_load_report_run_from_its_form_shows_its_report(
        self, served: Served, fresh_lab: Lab, page: Page, shots: Screenshots
    ) -> None:
        fresh_lab.overload(8.0, "lab-web-01")
        open_run_form(page, served, LOAD_REPORT)
        expect(page.get_by_text("Warn at this load per CPU.")).to_be_visible()  # typed, described
        expect(page.get_by_text("Critical at this load per CPU.")).to_be_visible()
        shots.take(page, "load-report-form.png", docs="ui-deployment-form.png")

        form_field(page, "Warning").get_by_role("spinbutton").fill("0.5")
        run_id = submit_and_view_run(page, served)
        served.wait_for_state(run_id, "COMPLETED")
        expect(run_state_badge(page)).to_have_text("Completed")

        artifact = open_artifact(page, LOAD_REPORT)
        row = artifact.get_by_role("row").filter(has_text="lab-web-01")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("critical")
        shots.take(page, "load-report-artifact.png", docs="ui-load-report-artifact.png")
        assert served.run(run_id)["parameters"]["params"]["warning"] == 0.5
        shots.publish()

    def test_a_runbook_made_in_the_form_cleans_full_disks_and_shows_its_report(
        self, served: Served, fresh_lab: Lab, page: Page, shots: Screenshots
    ) -> None:
        """Not a restart, and no code: "clean logs when disk is over 85 %" from remediate's form."""
        fill(fresh_lab, "lab-web-03")
        open_run_form(page, served, REMEDIATE)
        shots.take(page, "remediate-form.png")
        form_field(page, "Name").get_by_role("textbox").fill("clean-logs")
        form_field(page, "Signal Name").get_by_role("textbox").fill("disk usage")
        form_field(page, "Query").get_by_role("textbox").fill(USAGE_QUERY)
        for label, value in (("Threshold", "85"), ("Recovery", "80")):
            number = form_field(page, label)  # optional (a preset may give it): pick a number
            number.get_by_role("button", name=re.compile(r"^(float|number)$")).click()
            number.get_by_role("spinbutton").fill(value)
        form_field(page, "Action Name").get_by_role("textbox").fill("cleanup")
        form_field(page, "Action Done").get_by_role("textbox").fill("cleaned")
        form_field(page, "Command").get_by_role("textbox").fill(CLEANUP)
        dry_run = form_field(page, "Dry Run").get_by_role("switch")
        expect(dry_run).to_have_attribute("aria-checked", "true")  # a new runbook plans first
        dry_run.click()
        expect(dry_run).to_have_attribute("aria-checked", "false")
        shots.take(page, "remediate-form-filled.png")
        run_id = submit_and_view_run(page, served)

        state = served.wait_for_state(run_id, "COMPLETED")
        expect(run_state_badge(page)).to_have_text("Completed")
        assert state["message"].startswith("completed: 1 host cleaned and verified"), state

        report = open_artifact(page, "cleanup-report")
        row = report.get_by_role("row").filter(has_text="lab-web-03")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("verified")
        shots.take(page, "remediate-report.png")
        params = served.run(run_id)["parameters"]["params"]  # what the form sent
        assert params["name"] == "clean-logs" and params["dry_run"] is False
        assert [j["command"] for j in cleanups(fresh_lab)] == [CLEANUP]
        assert fresh_lab.admin.restarts() == {}

    def test_dry_run_from_the_form_plans_the_overloaded_web_host(
        self, served: Served, fresh_lab: Lab, page: Page, shots: Screenshots
    ) -> None:
        fresh_lab.overload(8.0, "lab-web-03", "lab-db-06")  # only the web host is selected
        open_run_form(page, served, RESTART)

        # `platform` is typed as an Ops Platform block: the form offers the saved blocks.
        platform = form_field(page, "Platform")
        expect(platform.get_by_role("button", name="OpsPlatform", exact=True)).to_have_attribute(
            "aria-selected", "true"
        )
        expect(platform.get_by_role("button", name="Add")).to_be_visible()  # ... or a new one
        # ... of any backend type installed, a user's own too (examples/inhouse_backend)
        expect(platform.get_by_role("button", name="InHousePlatform", exact=True)).to_be_visible()
        options = open_block_picker(page, platform)
        expect(options.get_by_role("option", name="lab", exact=True)).to_be_visible()
        options.get_by_role("option", name="lab", exact=True).click()
        expect(options).to_be_hidden()
        expect(platform.locator(".p-select-button__value")).to_have_text("lab")
        expect(form_field(page, "Prometheus").locator(".p-select-button__value")).to_have_text(
            "lab"
        )

        # `notify_block` is a picker of saved notification blocks too, of every type.
        notify = form_field(page, "Notify Block")
        notify.get_by_role("button", name="WeComWebhook", exact=True).click()
        options = open_block_picker(page, notify)
        options.get_by_role("option", name=UI_CHAT, exact=True).click()
        expect(notify.locator(".p-select-button__value")).to_have_text(UI_CHAT)

        fill_restart_form(page, threshold="5", tag="web", dry_run=True)
        form_field(page, "Platform").scroll_into_view_if_needed()
        shots.take(page, "restart-form.png")
        run_id = submit_and_view_run(page, served)

        state = served.wait_for_state(run_id, "COMPLETED")
        expect(run_state_badge(page)).to_have_text("Completed")
        assert state["message"] == "dry run: would restart 1 host in 1 batch; nothing restarted"
        [told] = wait_until(lambda: served.chat.received, 30, "the picked block to be notified")
        assert told.body["markdown"]["content"].startswith("**restart-overloaded-hosts dry_run**")
        shots.take(page, "dry-run.png")

        plan = open_artifact(page, "restart-plan")
        expect(plan.get_by_role("columnheader")).to_have_text(["batch", "hostname", "ip", "load"])
        rows = plan.get_by_role("row").filter(has=page.get_by_role("cell"))
        expect(rows).to_have_count(1)
        expect(rows.get_by_role("cell")).to_have_text(
            ["1", "lab-web-03", re.compile(r"^127\."), "8"]
        )
        expect(page.get_by_text(re.compile(r"^Restart plan [0-9a-f]{16}$"))).to_be_visible()
        shots.take(page, "restart-plan-artifact.png")

        policy = served.run(run_id)["parameters"]["policy"]  # what the form sent
        assert policy["threshold"] == 5 and policy["dry_run"] is True
        assert policy["selector"]["tags"] == ["web"]
        assert policy["platform"] == {
            "$ref": {"block_document_id": served.block_document_id("ops-platform", "lab")}
        }
        assert fresh_lab.admin.restarts() == {}  # a dry run touches nothing
        assert not [j for j in fresh_lab.jobs() if j["command"].startswith("systemctl restart")]

    def test_approving_in_the_ui_restarts_the_planned_host(
        self, served: Served, fresh_lab: Lab, page: Page, shots: Screenshots
    ) -> None:
        fresh_lab.overload(8.0, "lab-web-03")
        run_id = start_run_with_approval(page, served)
        served.wait_for_state(run_id, "PAUSED")
        assert fresh_lab.admin.restarts() == {}  # nothing happens before the answer

        dialog, digest = open_approval_form(page)
        approve = form_field(dialog, "Approve").get_by_role("switch")
        approve.click()
        expect(approve).to_have_attribute("aria-checked", "true")
        form_field(dialog, "Note").get_by_role("textbox").fill("approved in the UI")
        form_field(dialog, "Approver").get_by_role("textbox").fill("kim (on call)")
        shots.take(page, "approval-form.png", docs="ui-approval-form.png")
        submit_resume_form(page, dialog)

        state = served.wait_for_state(run_id, "COMPLETED")
        expect(run_state_badge(page)).to_have_text("Completed")
        assert state["message"] == (
            "completed: 1 host restarted and verified — 1 verified, 0 failed, 0 not touched"
        ), state
        assert fresh_lab.admin.restarts() == {"lab-web-03": 1}
        show_whole_run(page, "Completed")
        shots.take(page, "approved-run.png", docs="ui-flow-run.png")
        report = open_artifact(page, "restart-report")
        row = report.get_by_role("row").filter(has_text="lab-web-03")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("verified")
        assert plan_description(served, run_id) == f"Restart plan {digest}"  # the plan approved
        [summary] = requests.post(  # the decision, recorded in the run's summary artifact
            f"{served.api}/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": [SUMMARY]}}},
            timeout=5,
        ).json()
        assert re.search(
            rf"approved plan {digest} by kim \(on call\) at .* UTC: approved in the UI",
            summary["data"],
        ), summary["data"]
        policy = served.run(run_id)["parameters"]["policy"]  # what the form sent
        assert policy["approval"] is True and policy["approval_timeout_seconds"] == 300
        shots.publish()

    def test_rejecting_in_the_ui_restarts_nothing(
        self, served: Served, fresh_lab: Lab, page: Page, shots: Screenshots
    ) -> None:
        fresh_lab.overload(8.0, "lab-web-05")
        before = fresh_lab.admin.restarts()
        run_id = start_run_with_approval(page, served)
        served.wait_for_state(run_id, "PAUSED")

        dialog, _ = open_approval_form(page)
        approve = form_field(dialog, "Approve").get_by_role("switch")
        expect(approve).to_have_attribute("aria-checked", "false")  # left off: a reject
        form_field(dialog, "Note").get_by_role("textbox").fill("change freeze")
        shots.take(page, "rejection-form.png")
        submit_resume_form(page, dialog)

        state = served.wait_for_state(run_id, "FAILED")
        expect(run_state_badge(page)).to_have_text("Failed")
        assert state["message"].startswith("aborted: not approved"), state
        assert "change freeze" in state["message"]
        wait_until(lambda: flow_run_process_gone(run_id), 60, "the run's process to exit")
        show_whole_run(page, "Failed")
        shots.take(page, "rejected-run.png")
        # A rejection is an outcome, not a crash: its logs say so in one line, no traceback
        # (Prefect's engine used to add "Engine execution exited with unexpected exception").
        logs = served.logs(run_id)
        assert any(
            line.startswith("Finished in state Failed('aborted: not approved") for line in logs
        )
        assert not [line for line in logs if "Traceback" in line or "unexpected exception" in line]
        expect(page.get_by_text("Finished in state Failed")).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
        assert fresh_lab.admin.restarts() == before
        assert not [j for j in fresh_lab.jobs() if j["command"].startswith("systemctl restart")]


# --- what the engineer does in the UI --------------------------------------------------------


def form_field(scope: Page | Locator, label: str) -> Locator:
    """A schema form's field by its label ("Threshold" shows as "Threshold (Optional)"). The UI's
    labels are not tied to their inputs (`for` names no element), so: the field around the label."""
    title = scope.locator(".schema-form-property__label").filter(
        has_text=re.compile(rf"^{re.escape(label)}( \(Optional\))?$")
    )
    return title.locator(
        "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '),"
        " ' schema-form-property ')][1]"
    )


def open_run_form(page: Page, served: Served, name: str) -> None:
    """The deployment's page, then Run > Custom run: its parameter form."""
    deployment = served.deployments[name]
    page.goto(f"{served.url}/deployments/deployment/{deployment['id']}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("button", name="Custom run").click()
    page.wait_for_url(re.compile(r"/run(\?|$)"))
    expect(page.get_by_text("Validate parameters")).to_be_visible()


def open_block_picker(page: Page, block_field: Locator) -> Locator:
    """Open a block field's select (its chevron: a click on the value alone does not open it
    in headless Chromium); returns the list of options."""
    block_field.locator(".p-select-button__icon").click()
    options = page.get_by_role("listbox")
    expect(options).to_be_visible()
    return options


def fill_restart_form(
    page: Page,
    threshold: str,
    tag: str,
    dry_run: bool = False,
    approval_timeout: str | None = None,
) -> None:
    form_field(page, "Threshold").get_by_role("spinbutton").fill(threshold)
    tags = form_field(page, "Tags")
    tags.get_by_role("button", name="Add item").click()
    tags.get_by_role("textbox").fill(tag)
    for label, on in (("Dry Run", dry_run), ("Approval", approval_timeout is not None)):
        if on:
            switch = form_field(page, label).get_by_role("switch")
            switch.click()
            expect(switch).to_have_attribute("aria-checked", "true")
    if approval_timeout is not None:
        timeout = form_field(page, "Approval Timeout Seconds").get_by_role("spinbutton")
        timeout.fill(approval_timeout)


def find_runs(served: Served, name: str) -> list[dict[str, Any]]:
    return requests.post(
        f"{served.api}/flow_runs/filter",
        json={"flow_runs": {"name": {"any_": [name]}}},
        timeout=5,
    ).json()


def submit_and_view_run(page: Page, served: Served) -> str:
    """Name the run, submit the form, see the UI confirm it, open the run's page; returns the
    run's id.

    The page is opened by its address: the toast's "View run" is gone after 5 s (and the UI
    may show that toast twice, overlapping), and the deployment's run list can miss a run for
    a polling interval while it moves from "Next run" (scheduled) to the list (pending)."""
    name = f"ui-test-{uuid.uuid4().hex[:8]}"
    page.locator(".flow-run-name-input").get_by_role("textbox").fill(name)
    toasts = page.locator(".p-toast-container__toast")
    scheduled = toasts.filter(has_text=f"{name} scheduled to start now").first
    went_wrong = toasts.filter(has_text="Something went wrong").first
    page.get_by_role("button", name="Submit").click()
    # "Oops. Something went wrong" (with Prefect Cloud's promotion under it) is the UI's toast
    # for any of its API calls that failed, a 500 from the busy test server among them: a
    # person who sees it and finds no run made submits again (the failed calls are printed).
    expect(scheduled.or_(went_wrong).first).to_be_visible()
    if not scheduled.is_visible():
        with contextlib.suppress(AssertionError):  # a failed poll, the submit may still land
            expect(scheduled).to_be_visible(timeout=10_000)
    runs = find_runs(served, name)
    if not runs and not scheduled.is_visible():
        print(f"the UI said something went wrong and made no run: submitting {name} again")
        page.get_by_role("button", name="Submit").click()
        expect(scheduled).to_be_visible()
        runs = find_runs(served, name)
    assert len(runs) == 1, runs  # one submit, one run
    page.goto(f"{served.url}/runs/flow-run/{runs[0]['id']}")
    expect(page.get_by_role("navigation").get_by_text(name, exact=True)).to_be_visible()
    return runs[0]["id"]


def start_run_with_approval(page: Page, served: Served) -> str:
    open_run_form(page, served, RESTART)
    fill_restart_form(page, threshold="4", tag="web", approval_timeout="300")
    return submit_and_view_run(page, served)


def submit_resume_form(page: Page, dialog: Locator) -> None:
    """Submit the approval form, as a person does: when the busy test server refused the resume
    (503, nothing done; the UI keeps the form open and says nothing), submit once more."""
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/resume")
    ) as answer:
        dialog.get_by_role("button", name="Submit").click()
    if answer.value.status == 503:
        print("the server answered the resume 503 and the form stayed open: submitting again")
        dialog.get_by_role("button", name="Submit").click()
    expect(dialog).to_be_hidden()


def open_approval_form(page: Page) -> tuple[Locator, str]:
    """The paused run's Resume button: the Approval form, its digest prefilled."""
    page.reload()  # the run paused since the page was opened: the page as a person opens it now
    expect(run_state_badge(page)).to_have_text("Paused")
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog").filter(has_text="Resume Flow Run")
    expect(dialog).to_be_visible()
    heading = dialog.get_by_text(re.compile(r"^Approve plan [0-9a-f]{16}\?$"))
    expect(heading).to_be_visible()
    digest = heading.inner_text().split()[-1].rstrip("?")
    expect(dialog.get_by_text(f"Plan {digest}", exact=True)).to_be_visible()  # the summary
    expect(form_field(dialog, "Plan Digest").get_by_role("textbox")).to_have_value(digest)
    expect(form_field(dialog, "Note").get_by_role("textbox")).to_have_value("")
    return dialog, digest


def plan_description(served: Served, run_id: str) -> str:
    [plan] = requests.post(
        f"{served.api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["restart-plan"]}, "flow_run_id": {"any_": [run_id]}}},
        timeout=5,
    ).json()
    return plan["description"]


def flow_run_process_gone(run_id: str) -> bool:
    """No process runs this flow run any more (`opsflow serve` starts one per run): every log
    line it wrote has reached the server."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if needle in environ.read_bytes():
                return False
    return True


def show_whole_run(page: Page, state: str) -> None:
    """The run page as opened after the run ended (its graph drawn with every task run)."""
    page.reload()
    expect(run_state_badge(page)).to_have_text(state)
    page.wait_for_load_state("networkidle")


def run_state_badge(page: Page) -> Locator:
    """The state badge in the run page's heading (Scheduled, Running, Paused, Completed, ...)."""
    return page.locator(".page-heading-flow-run__meta .state-badge")


def open_artifact(page: Page, key: str) -> Locator:
    """On a run's page: the Artifacts tab, then the table artifact's card; returns its table."""
    page.get_by_role("tablist").get_by_text("Artifacts", exact=True).click()
    # A card reads "TABLE load-report Created ...": its link's name starts with type and key.
    card = re.compile(rf"^table {re.escape(key)} ", re.IGNORECASE)
    page.get_by_role("link", name=card).click()
    page.wait_for_url(re.compile(r"/artifacts/artifact/"))
    table = page.get_by_role("table")
    expect(table).to_be_visible()
    return table


@dataclass
class Screenshots:
    """Screenshots into tmp_path; `OPSFLOW_UPDATE_SCREENSHOTS=1` copies the docs' ones there."""

    tmp: Path
    for_docs: dict[Path, str] = field(default_factory=dict)

    def take(self, page: Page, name: str, docs: str | None = None) -> None:
        path = self.tmp / name
        page.screenshot(path=path, animations="disabled", caret="hide")
        assert path.stat().st_size > 20_000, f"{name}: blank?"
        if docs:
            self.for_docs[path] = docs

    def publish(self) -> None:
        """At the end of a test that passed: its screenshots for docs/, when asked for."""
        if os.environ.get("OPSFLOW_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(exist_ok=True)
            for path, name in self.for_docs.items():
                shutil.copy(path, DOCS / name)


# --- prefect.yaml: not a browser test -----------------------------------------------------------


def test_prefect_yaml_deploys_every_runbook_with_its_schedule(prefect_server, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": f"{prefect_server}/api"}
    env.pop("OPSFLOW_HOME", None)  # the entrypoints name the installed package: no checkout needed
    root = Path(__file__).parent.parent
    pool = subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", "opsflow", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0 or "already exists" in pool.stdout + pool.stderr, pool.stderr

    deploy = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
    api = f"{prefect_server}/api"
    crons = {}
    for flow_name, name in [
        ("restart-overloaded-hosts", "restart-overloaded-hosts"),
        ("load-report", "load-report"),
        ("disk-cleanup", "disk-cleanup"),
        ("register-hosts", "register-hosts"),
        ("run-command", "run-command"),
        ("remediate", "remediate"),
        ("remediate", "clean-logs-when-disk-full"),
    ]:
        found = requests.get(f"{api}/deployments/name/{flow_name}/{name}", timeout=5).json()
        crons[name] = [s["schedule"]["cron"] for s in found["schedules"]]
        assert [s["active"] for s in found["schedules"]] == [False] * len(crons[name])  # paused
        assert found["work_pool_name"] == "opsflow"
        assert found["parameter_openapi_schema"]["properties"]  # typed parameters for the form
    assert crons == {
        "restart-overloaded-hosts": ["*/10 * * * *"],
        "load-report": ["0 * * * *"],
        "disk-cleanup": ["30 3 * * *"],
        "register-hosts": [],
        "run-command": [],
        "remediate": [],
        "clean-logs-when-disk-full": [],
    }
    made = requests.get(f"{api}/deployments/name/remediate/clean-logs-when-disk-full", timeout=5)
    assert made.json()["parameters"]["params"]["name"] == "clean-logs"  # made in YAML, no code
    # The restart runbook runs for the hosts an alert fires for.
    automations = requests.post(f"{api}/automations/filter", json={}, timeout=5).json()
    triggers = [a for a in automations if a["name"].startswith("restart the hosts")]
    assert triggers, [a["name"] for a in automations]
    trigger = triggers[-1]
    assert trigger["trigger"]["expect"] == ["opsflow.alerts.firing"]
    assert trigger["trigger"]["match"]["opsflow.alertname"] == "HostOverloaded"
    [action] = trigger["actions"]
    assert action["type"] == "run-deployment"
    assert "event.payload.hostnames" in json.dumps(action["parameters"])
