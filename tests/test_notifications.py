"""WeCom, DingTalk and Feishu blocks against a local receiver; runbooks notify through them."""

from __future__ import annotations

import time

import pytest
from prefect.blocks.abstract import NotificationError
from pydantic import SecretStr

from opsflow.blocks import DingTalkWebhook, FeishuWebhook, WeComWebhook
from opsflow.flows.runbooks.restart_overloaded_hosts import RestartPolicy, restart_overloaded_hosts
from opsflow.opsapi.chat import dingtalk_sign, feishu_sign
from tests.chat_receiver import chat_receiver

FAST = {
    "platform": "lab",
    "prometheus": "lab",
    "batch_size": 2,
    "poll_seconds": 0.5,
    "verify_window_seconds": 30,
    "job_timeout_seconds": 30,
}


def test_wecom_sends_markdown_with_its_key():
    with chat_receiver() as receiver:
        WeComWebhook(url=receiver.url, key=SecretStr("wecom-key-123456")).notify(
            "3 ok", "Restart done"
        )

    [message] = receiver.received
    assert message.path == "/cgi-bin/webhook/send"
    assert message.query == {"key": "wecom-key-123456"}
    assert message.body == {
        "msgtype": "markdown",
        "markdown": {"content": "**Restart done**\n3 ok"},
    }


def test_dingtalk_signs_each_message():
    with chat_receiver() as receiver:
        DingTalkWebhook(
            url=receiver.url,
            access_token=SecretStr("ding-token-123456"),
            secret=SecretStr("SECding-secret"),
        ).notify("ok", "Done")

    [message] = receiver.received
    assert message.query["access_token"] == "ding-token-123456"
    timestamp = int(message.query["timestamp"])
    assert abs(timestamp / 1000 - time.time()) < 60
    assert message.query["sign"] == dingtalk_sign("SECding-secret", timestamp)
    assert message.body["markdown"]["title"] == "Done"


def test_feishu_signs_in_the_body():
    with chat_receiver() as receiver:
        receiver.answer = {"code": 0, "msg": "success"}
        FeishuWebhook(
            url=receiver.url,
            hook_token=SecretStr("feishu-hook-123456"),
            secret=SecretStr("feishu-secret"),
        ).notify("ok", "Done")

    [message] = receiver.received
    assert message.path == "/open-apis/bot/v2/hook/feishu-hook-123456"
    assert message.body["content"] == {"text": "Done\n\nok"}
    assert message.body["sign"] == feishu_sign("feishu-secret", int(message.body["timestamp"]))


def test_an_errcode_in_a_200_answer_is_a_failure_without_the_key(caplog):
    block = WeComWebhook(url="http://127.0.0.1:9", key=SecretStr("wecom-key-654321"))
    with chat_receiver() as receiver:
        receiver.answer = {"errcode": 93000, "errmsg": "invalid webhook url"}
        block.url = receiver.url
        block.notify("b", "s")  # Prefect's contract: logged, not raised
        with pytest.raises(NotificationError) as caught, block.raise_on_failure():
            block.notify("b", "s")

    assert "code 93000, invalid webhook url" in caught.value.log
    assert "wecom-key-654321" not in caught.value.log
    [logged] = [r for r in caplog.records if "notification not sent" in r.getMessage()]
    assert "code 93000" in logged.getMessage() and "wecom-key-654321" not in logged.getMessage()


def test_runbook_notifies_on_completion_and_on_abort(fresh_lab):
    with chat_receiver() as receiver:
        WeComWebhook(url=receiver.url, key=SecretStr("wecom-key-777777")).save(
            "ops", overwrite=True
        )
        fresh_lab.overload(8.0, "lab-web-01")
        done = restart_overloaded_hosts(
            RestartPolicy(notify_block="wecom-webhook/ops", **FAST), return_state=True
        )
        fresh_lab.overload(8.0, "lab-web-03", "lab-web-05")
        aborted = restart_overloaded_hosts(
            RestartPolicy(notify_block="wecom-webhook/ops", max_hosts=1, **FAST), return_state=True
        )
        failed = restart_overloaded_hosts(
            RestartPolicy(notify_block="wecom-webhook/ops", query="absent_metric", **FAST),
            return_state=True,
        )

    assert done.is_completed() and aborted.is_failed() and failed.is_failed()
    texts = [m.body["markdown"]["content"] for m in receiver.received]
    assert texts[0].startswith("**restart-overloaded-hosts completed**")
    assert "1 verified" in texts[0]
    assert texts[1].startswith("**restart-overloaded-hosts aborted**")
    assert "blast-radius cap of 1" in texts[1]
    assert texts[2].startswith("**restart-overloaded-hosts failed**")
    assert "no series" in texts[2]


def test_every_runbook_notifies_its_summary(fresh_lab):
    from opsflow.flows.runbooks.load_report import LoadReportParams, load_report

    with chat_receiver() as receiver:
        receiver.answer = {"code": 0, "msg": "success"}
        FeishuWebhook(url=receiver.url, hook_token=SecretStr("feishu-hook-222222")).save(
            "oncall", overwrite=True
        )
        fresh_lab.overload(8.0, "lab-db-02")
        load_report(
            LoadReportParams(notify_block="feishu-webhook/oncall", platform="lab", prometheus="lab")
        )

    [message] = receiver.received
    assert message.body["content"]["text"] == (
        "load-report completed\n\n10 hosts: 1 critical, 0 warning, 9 ok, 0 without data"
    )
