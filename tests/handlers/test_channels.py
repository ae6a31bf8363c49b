"""Alert channels beyond Telegram: WeCom and DingTalk duty groups and SMS, against local
servers that check the request formats those services document (tests/support/channel_servers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlmodel import select

import bot.duty_channels as channel_worker
from bot.duty_channels import EndpointScheduler, Job, dingtalk_url
from models import Alert, Channel, DutyGroup, OutboxMessage, OutboxStatus, OutcomeCode, Priority
from services.alerts import policy as alerts_policy
from services.alerts import raising, respond
from services.alerts import timeline as alerts_timeline
from services.duty_channels import alerting, groups
from services.duty_channels import sms as duty_channels_sms
from services.duty_channels import worker as duty_channels_worker
from services.duty_channels.groups import GroupRequest
from services.duty_channels.worker import ChannelMessage
from tests.support.channel_servers import DingTalkRobot, SmsGateway, WeComRobot, dingtalk_sign
from tests.support.sos_support import staff, until

ZONE = ZoneInfo("Asia/Shanghai")
# The other channels as the running bot has them: its username for the acknowledgement
# link, and an SMS gateway.
CHANNELS = alerting.ChannelConfig(
    bot_username="cadre_test_bot", sms_enabled=True, default_language="zh-Hans", zone=ZONE
)
POLICY = alerts_policy.Policy(zone=ZONE, channels=CHANNELS)


# ---------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture
async def wecom() -> AsyncIterator[WeComRobot]:
    server = WeComRobot()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def dingtalk() -> AsyncIterator[DingTalkRobot]:
    server = DingTalkRobot()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def sms() -> AsyncIterator[SmsGateway]:
    server = SmsGateway()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def channel_settings(settings, sms):
    return settings.model_copy(
        update={
            "sms_url": sms.url("/sms"),
            "sms_headers": SecretStr(json.dumps({"X-Api-Key": sms.api_key})),
        }
    )


@contextlib.asynccontextmanager
async def worker_running(settings, db) -> AsyncIterator[channel_worker.ChannelWorker]:
    worker = channel_worker.ChannelWorker(settings, db)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 5)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


def add_group(db, admin, channel, url, name, secret=None) -> DutyGroup:
    request = GroupRequest(prefecture="ganzi", channel=channel, url=url, secret=secret, name=name)
    return db.call(groups.set_group, admin, request)


def rows(db, **where) -> list[OutboxMessage]:
    with db.session() as session:
        query = select(OutboxMessage)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(session.exec(query.order_by(OutboxMessage.id)))


def timeline(db, alert_id: int, lang: str = "zh-Hans") -> str:
    """Every event and delivery (the CSV's rows; the phone view summarises each round)."""
    return db.call(alerts_timeline.timeline_csv, alert_id, lang, ZONE).decode("utf-8-sig")


def bot_logs(caplog) -> str:
    """Log lines of the bot (not the access log of the local services)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp.access")
    )


def channel_rows(db) -> list[OutboxMessage]:
    return [r for r in rows(db) if r.channel != "telegram"]


def settled(db) -> bool:
    return all(r.status in ("sent", "failed", "cancelled") for r in channel_rows(db))


# ---------------------------------------------------------------------------- an SOS everywhere


async def test_an_sos_reaches_the_wecom_and_dingtalk_groups_and_the_officers_sms_at_once(
    db, channel_settings, wecom, dingtalk, sms, caplog
):
    caplog.set_level(logging.DEBUG)
    people_ = staff(db)
    admin = people_["admin"]
    add_group(db, admin, Channel.WECOM, wecom.webhook(), "甘孜值班群")
    add_group(db, admin, Channel.DINGTALK, dingtalk.webhook(), "甘孜钉钉群", dingtalk.secret)
    db.call(duty_channels_sms.set_sms, people_["on"], "13800138001")
    db.call(duty_channels_sms.set_sms, people_["off"], "13800138002")  # not on duty: not in round 1

    async with worker_running(channel_settings, db):
        alert_id = db.call(
            raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY
        )
        await until(lambda: wecom.received and dingtalk.received and sms.received)
        await until(lambda: settled(db))

    assert wecom.rejected == dingtalk.rejected == sms.rejected == []
    link = f"https://t.me/cadre_test_bot?start=ack_{alert_id}"
    (group_text,) = wecom.texts
    for expected in (f"紧急求助 #{alert_id}", "Li Wei", "理塘", "4014", "+8613800138000", link):
        assert expected in group_text
    assert wecom.received[0].body["text"]["mentioned_mobile_list"] == ["13800138001"]
    (ding,) = dingtalk.received
    assert ding.body["at"]["atMobiles"] == ["13800138001"]
    assert link in ding.body["text"]["content"] and "@13800138001" in ding.body["text"]["content"]
    (text_message,) = sms.received
    assert text_message.body["phone"] == "+8613800138001"
    assert f"#{alert_id}" in text_message.body["text"] and link in text_message.body["text"]
    assert len(text_message.body["text"]) <= 140  # two SMS segments at most

    shown = timeline(db, alert_id)
    assert "已送达 企业微信群「甘孜值班群」" in shown
    assert "已送达 钉钉群「甘孜钉钉群」" in shown
    assert "已送达 短信 +86…8001" in shown
    assert "13800138001" not in shown  # the number is masked in the timeline
    # credentials never reach a log line of the bot
    for secret in (wecom.key, dingtalk.token, dingtalk.secret, sms.api_key, "13800138001"):
        assert secret not in bot_logs(caplog)


async def test_escalation_reposts_to_the_groups_and_texts_the_next_tier(
    db, channel_settings, wecom, sms
):
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    db.call(duty_channels_sms.set_sms, people_["off"], "+8613800138002")
    policy = alerts_policy.Policy(ack_timeout=1, repeat_interval=300, zone=ZONE, channels=CHANNELS)
    alert_id = db.call(
        raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=policy
    )
    with db.session() as session:  # the timer ran out
        alert = session.get(Alert, alert_id)
        alert.next_escalation_at = alert.created_at
        session.add(alert)
        session.commit()
    assert db.call(raising.escalate_due, policy) == [alert_id]
    async with worker_running(channel_settings, db):
        await until(lambda: len(wecom.received) == 2 and len(sms.received) == 1)
    assert "第 2 轮" in wecom.texts[1]
    assert sms.received[0].body["phone"] == "+8613800138002"  # the second tier's officer


async def test_a_red_check_in_goes_to_the_groups_too(db, channel_settings, wecom):
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    alert_id = db.call(
        raising.raise_alert,
        person_id=people_["cadre"].id,
        cause="checkin_red",
        reasons=["health.reason.spo2_low"],
        policy=POLICY,
    )
    async with worker_running(channel_settings, db):
        await until(lambda: wecom.received)
    assert f"健康红色预警 #{alert_id}" in wecom.texts[0]


async def test_the_groups_hear_when_someone_takes_it_and_when_it_is_closed(
    db, channel_settings, wecom
):
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    async with worker_running(channel_settings, db):
        alert_id = db.call(
            raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY
        )
        await until(lambda: wecom.received and settled(db))
        db.call(respond.acknowledge, alert_id=alert_id, actor=people_["on"], policy=POLICY)
        await until(lambda: len(wecom.received) == 2)
        db.call(
            respond.resolve,
            alert_id=alert_id,
            actor=people_["on"],
            outcome="hospital",
            policy=POLICY,
        )
        await until(lambda: len(wecom.received) == 3)
    assert f"#{alert_id} 已由 Zhang On 接手" in wecom.texts[1]
    assert "已处理完毕：已送医院" in wecom.texts[2]


# ---------------------------------------------------------------------------- failures


async def test_a_bad_key_is_recorded_shown_and_told_to_the_admins_once(
    db, channel_settings, wecom, caplog
):
    caplog.set_level(logging.DEBUG)
    people_ = staff(db)
    wrong = "deadbeef-0000-4bc4-97a0-0ec2sifa0000"
    group = add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(wrong), "甘孜值班群")
    from tests.support import factories

    second = factories.person(db, 1002, real_name="Zhao Min", language="en")
    async with worker_running(channel_settings, db):
        first_id = db.call(
            raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY
        )
        await until(lambda: settled(db) and len(channel_rows(db)) == 1)
        db.call(raising.raise_alert, person_id=second.id, cause="sos", policy=POLICY)
        await until(lambda: settled(db) and len(channel_rows(db)) == 2)

    failed = channel_rows(db)
    assert [r.status for r in failed] == [OutboxStatus.FAILED] * 2
    assert {r.outcome_code for r in failed} == {OutcomeCode.REFUSED}
    assert failed[0].outcome.startswith("errcode 93000")
    assert failed[0].attempts == 1  # permanent: not retried
    assert "发送失败：errcode 93000" in timeline(db, first_id)
    told = rows(db, source="channels:failing")
    assert len(told) == 1 and told[0].person_id == people_["admin"].id  # once, not per alert
    assert (
        "企业微信群「甘孜值班群」" in told[0].payload["text"] and "93000" in told[0].payload["text"]
    )
    with db.session() as session:
        stored = session.get(DutyGroup, group.id)
        assert stored.failing_since is not None and "93000" in stored.failing_reason
    everything = bot_logs(caplog) + json.dumps([r.payload for r in rows(db)], ensure_ascii=False)
    everything += " ".join(r.outcome or "" for r in rows(db))
    assert wrong not in everything


async def test_a_wrong_dingtalk_secret_fails_the_signature_check(db, channel_settings, dingtalk):
    people_ = staff(db)
    add_group(
        db,
        people_["admin"],
        Channel.DINGTALK,
        dingtalk.webhook(),
        "钉钉群",
        "SECnot-the-secret-0000",
    )
    async with worker_running(channel_settings, db):
        db.call(raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY)
        await until(lambda: settled(db) and channel_rows(db))
    (row,) = channel_rows(db)
    assert row.status == OutboxStatus.FAILED and row.outcome.startswith("errcode 310000")
    assert dingtalk.rejected == ["sign"]


async def test_transient_errors_and_rate_limits_are_retried_until_delivered(
    db, channel_settings, wecom, dingtalk, sms, monkeypatch
):
    monkeypatch.setattr(channel_worker, "RATE_LIMIT_PAUSE", 0.3)
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    add_group(db, people_["admin"], Channel.DINGTALK, dingtalk.webhook(), "钉钉群", dingtalk.secret)
    db.call(duty_channels_sms.set_sms, people_["on"], "13800138001")
    wecom.fail("server_error", 2)
    dingtalk.fail("rate_limit")
    sms.fail("server_error")
    async with worker_running(channel_settings, db):
        db.call(raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY)
        await until(lambda: wecom.received and dingtalk.received and sms.received, within=20)
        await until(lambda: settled(db))
    by_channel = {r.channel: r for r in channel_rows(db)}
    assert {c: r.status for c, r in by_channel.items()} == {
        "wecom": OutboxStatus.SENT,
        "dingtalk": OutboxStatus.SENT,
        "sms": OutboxStatus.SENT,
    }
    assert by_channel["wecom"].attempts == 3 and by_channel["dingtalk"].attempts == 2
    assert wecom.failures == dingtalk.failures == sms.failures == []


async def test_a_message_no_longer_needed_is_not_sent(db, channel_settings, wecom):
    """Taken in Telegram before the group message left: it is not posted."""
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    alert_id = db.call(
        raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY
    )
    db.call(respond.acknowledge, alert_id=alert_id, actor=people_["on"], policy=POLICY)
    async with worker_running(channel_settings, db):
        await until(lambda: settled(db))
    assert wecom.received == []
    assert channel_rows(db)[0].status == OutboxStatus.CANCELLED
    assert "未发送（已有人接手）" in timeline(db, alert_id)


async def test_a_removed_group_or_number_is_recorded_not_retried(db, channel_settings, wecom):
    people_ = staff(db)
    group = add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    db.call(duty_channels_sms.set_sms, people_["on"], "13800138001")
    db.call(raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY)
    db.call(groups.remove_group, people_["admin"], group.id)
    db.call(duty_channels_sms.clear_sms, people_["on"])
    async with worker_running(channel_settings, db):
        await until(lambda: settled(db))
    assert {(r.status, r.outcome_code) for r in channel_rows(db)} == {
        (OutboxStatus.FAILED, OutcomeCode.NO_CHANNEL)
    }


async def test_a_crash_while_sending_sends_again_at_the_next_start(db, channel_settings, wecom):
    people_ = staff(db)
    add_group(db, people_["admin"], Channel.WECOM, wecom.webhook(), "甘孜值班群")
    db.call(raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=POLICY)
    assert len(db.call(duty_channels_worker.claim_due, 10)) == 1  # taken, then the process died
    async with worker_running(channel_settings, db):
        await until(lambda: wecom.received)
    assert channel_rows(db)[0].status == OutboxStatus.SENT


# ---------------------------------------------------------------------------- pure parts


def test_dingtalk_signature_is_the_documented_one():
    url = dingtalk_url(
        "https://oapi.dingtalk.com/robot/send?access_token=abc", "SECxyz", 1700000000000
    )
    query = parse_qs(urlsplit(url).query)  # URL-decoded, as DingTalk reads it
    assert query["access_token"] == ["abc"] and query["timestamp"] == ["1700000000000"]
    assert query["sign"] == [dingtalk_sign("SECxyz", "1700000000000")]
    assert "%2B" in url or "%2F" in url or "%3D" in url  # base64 is URL-encoded


def test_sms_templates_escape_what_they_fill_in():
    tricky = '他说："快来" \\ 路上\n第二行'
    body, kind = duty_channels_sms.sms_body(
        '{"to": "{phone}", "msg": "{text}"}', "+8613800138001", tricky
    )
    assert kind == "application/json"
    assert json.loads(body) == {"to": "+8613800138001", "msg": tricky}
    body, kind = duty_channels_sms.sms_body(
        "mobile={phone_national}&content={text}", "+8613800138001", "a&b=c 你"
    )
    assert kind == "application/x-www-form-urlencoded"
    assert parse_qs(body) == {"mobile": ["13800138001"], "content": ["a&b=c 你"]}


def test_credentials_and_numbers_are_masked():
    url = (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    )
    assert groups.mask_url(url) == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a…5aaa"
    assert groups.mask_phone("+8613800138001") == "+86…8001"
    assert groups.scrub(f"failed {url}", url) == f"failed {groups.mask_secret(url)}"


def test_dutygroup_set_is_understood_in_any_order():
    request = groups.parse_set(
        [
            "甘孜",
            "dingtalk",
            "https://oapi.dingtalk.com/robot/send?access_token=t0k",
            "SEC" + "a" * 30,
            "甘孜",
            "值班群",
        ]
    )
    assert (request.prefecture, request.channel, request.secret) == (
        "ganzi",
        Channel.DINGTALK,
        "SEC" + "a" * 30,
    )
    assert request.name == "甘孜 值班群" and groups.check_request(request) is None
    wecom_without_key = groups.parse_set(["ganzi", "wecom", "https://qyapi.weixin.qq.com/x"])
    assert groups.check_request(wecom_without_key) == "channels.set.bad_url_wecom"
    assert groups.check_request(groups.parse_set(["wecom", "https://h/?key=1"])) == (
        "channels.set.no_prefecture"
    )


def _job(seq: int, endpoint: str = "duty_group:1", priority: int = Priority.EMERGENCY) -> Job:
    channel = "sms" if endpoint == "sms" else "wecom"
    message = ChannelMessage(seq, channel, endpoint, priority, {}, 0, None, None)
    return Job(priority, seq, message)


def _send_all(scheduler: EndpointScheduler, until_time: float) -> list[tuple[float, Job]]:
    """Simulated time: take every job as soon as allowed; each send takes 0.1 s."""
    now, sent = 0.0, []
    while now <= until_time:
        job, wait = scheduler.next(now)
        if job is None:
            if wait == float("inf"):
                break
            now += wait
            continue
        sent.append((now, job))
        scheduler.done(job, now + 0.1)
        now += 0.1
    return sent


def test_a_robot_gets_at_most_20_messages_a_minute_and_others_are_not_held_up():
    scheduler = EndpointScheduler(sms_per_minute=60)
    for seq in range(40):
        scheduler.push(_job(seq), 0.0)
    scheduler.push(_job(100, "duty_group:2"), 0.0)
    sent = _send_all(scheduler, 600)
    robot = [at for at, job in sent if job.message.endpoint == "duty_group:1"]
    assert len(robot) == 40
    for start in robot:  # any 60-second window
        assert sum(1 for at in robot if start <= at < start + 60) <= 20
    other = [at for at, job in sent if job.message.endpoint == "duty_group:2"]
    assert other and other[0] < robot[20]  # not kept waiting behind the first robot's limit
    assert robot[20] >= 60  # the 21st waits for the minute


def test_emergencies_go_first_and_a_rate_limit_pauses_only_its_robot():
    scheduler = EndpointScheduler(sms_per_minute=60)
    scheduler.push(_job(1, priority=Priority.BROADCAST), 0.0)
    scheduler.push(_job(2, priority=Priority.EMERGENCY), 0.0)
    job, _ = scheduler.next(0.0)
    assert job is not None and job.seq == 2
    scheduler.done(job, 0.1)
    scheduler.pause("duty_group:1", 30, 0.1)
    scheduler.push(_job(3, "sms"), 0.1)
    job, wait = scheduler.next(0.2)
    assert job is not None and job.message.endpoint == "sms"
    scheduler.done(job, 0.3)
    job, wait = scheduler.next(0.3)
    assert job is None and wait == pytest.approx(29.8)
    job, _ = scheduler.next(30.2)
    assert job is not None and job.seq == 1
