"""The README's automation, end to end: a real `prefect server start` loads opsflow's chat
blocks (the `prefect.collections` entry point) and delivers an aborted rollout's reason to
WeCom, DingTalk and Feishu, checked at a local receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.chat_receiver import chat_receiver
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import sys
from pydantic import SecretStr
from opsflow.blocks import DingTalkWebhook, FeishuWebhook, WeComWebhook
from examples.automation_on_aborted_rollout import aborted_rollout_automation

url = sys.argv[1]
WeComWebhook(url=url, key=SecretStr("wecom-e2e-key-0001")).save("e2e", overwrite=True)
DingTalkWebhook(
    url=url, access_token=SecretStr("ding-e2e-token-0001"), secret=SecretStr("SEC-e2e-sign")
).save("e2e", overwrite=True)
FeishuWebhook(url=url, hook_token=SecretStr("feishu-e2e-hook-0001")).save("e2e", overwrite=True)
for block in ("wecom-webhook/e2e", "dingtalk-webhook/e2e", "feishu-webhook/e2e"):
    automation = aborted_rollout_automation(block)
    automation.name = f"{automation.name} via {block}"
    automation.create()
print("ready")
"""


def test_an_aborted_rollout_reaches_every_chat_through_the_servers_automation(
    fresh_lab, prefect_server
):
    api = f"{prefect_server}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    up = subprocess.run(
        [sys.executable, "-m", "opsflow.lab", "up", "--dir", str(fresh_lab.config.dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr  # the lab's blocks, saved in that server
    fresh_lab.overload(8.0, "lab-web-01", "lab-db-02")

    with chat_receiver() as receiver:
        receiver.answer = {"errcode": 0, "errmsg": "ok", "code": 0}  # every service's "taken"
        setup = subprocess.run(
            [sys.executable, "-c", SETUP, receiver.url],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr

        run = subprocess.run(
            [sys.executable, "-m", "opsflow.flows", "run", "restart-overloaded-hosts"]
            + ["--platform-block", "lab", "--prometheus-block", "lab", "--max-hosts", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 1, run.stdout + run.stderr  # aborted: the run failed

        wait_until(lambda: len(receiver.received) >= 3, 90, "three chat messages")

    by_service = {
        "WeCom": [m for m in receiver.received if m.path == "/cgi-bin/webhook/send"],
        "DingTalk": [m for m in receiver.received if m.path == "/robot/send"],
        "Feishu": [m for m in receiver.received if m.path.startswith("/open-apis/bot/v2/hook/")],
    }
    assert {service: len(messages) for service, messages in by_service.items()} == {
        "WeCom": 1,
        "DingTalk": 1,
        "Feishu": 1,
    }
    texts = {
        "WeCom": by_service["WeCom"][0].body["markdown"]["content"],
        "DingTalk": by_service["DingTalk"][0].body["markdown"]["text"],
        "Feishu": by_service["Feishu"][0].body["content"]["text"],
    }
    for service, text in texts.items():
        assert "opsflow rollout aborted" in text, service
        assert "restart-overloaded-hosts" in text, service
        assert "2 of 10 hosts over 4 exceeds the blast-radius cap of 1" in text, (service, text)
    assert by_service["DingTalk"][0].query["sign"]  # signed inside the server too
    assert fresh_lab.admin.restarts() == {}
