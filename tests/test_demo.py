"""`cadre-bot demo` end to end: the real command, driven by a script on stdin, as a newcomer
would try it (no token, no Telegram, a fresh database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.i18n import t

pytestmark = pytest.mark.e2e


def demo(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo in tmp_path (its log goes to tmp_path/var/demo.log) with `script` as
    stdin; settings of the caller's environment and .env do not leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADRE_")}
    env["PYTHONIOENCODING"] = "utf-8"
    exe = str(Path(sys.executable).with_name("cadre-bot"))
    return subprocess.run(
        [exe, "demo", *args],
        input=script,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
        timeout=240,
    )


def test_a_scripted_sos_reaches_the_duty_officer_who_takes_it(tmp_path):
    script = "\n".join(
        [
            "/keys",  # the cadre's keyboard: [1] 🆘 紧急求助  [2] 📝 健康打卡
            "1",
            "/as duty",
            "1",  # ✋ 我来处理 on the alert
            "/quit",
        ]
    )
    done = demo(tmp_path, script)
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert "Traceback" not in out + done.stderr
    # the cadre presses 🆘 by its number
    sos = t("zh-Hans", "main.sos")
    assert f"[1] {sos}" in out
    assert f"（点按：{sos}）" in out
    # the alert reaches the officer, with the acknowledge button numbered
    alert_line = next(line for line in out.splitlines() if "紧急求助 #1 — 李伟" in line)
    assert alert_line.startswith("[duty 张强]"), alert_line
    assert f"[1] {t('zh-Hans', 'sos.btn.ack')}" in out
    # the officer presses it, and the cadre is told who is handling the call
    assert "[duty 张强 · 你] › 1" in out
    told = next(line for line in out.splitlines() if "正在处理您的求助 #1" in line)
    assert told.startswith("[cadre 李伟]") and "张强（值班人员）" in told, told
    assert out.rstrip().endswith("演示结束。机器人的日志：var/demo.log")
    # the bot's log went to the file, not into the chat
    log = (tmp_path / "var" / "demo.log").read_text(encoding="utf-8")
    assert "SOS alert 1" in log
    assert "SOS alert" not in out


def test_bad_input_gets_a_clear_line_and_the_demo_goes_on(tmp_path):
    script = "\n".join(["/as boss", "42", "/wait soon", "/as admin", "/alerts"])  # then EOF
    done = demo(tmp_path, script, "--language", "en")
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert "Traceback" not in out + done.stderr
    assert "There is no person “boss” in the demo: type /as cadre, /as duty or /as admin." in out
    assert "There is no button 42: the buttons shown to you are 1 to" in out
    assert "To send 42 as a message: /say 42" in out
    assert "Type /wait and a number of seconds from 1 to 600" in out
    # after all that, the admin still gets the bot's answer; the end of stdin ends the demo
    assert "You are now [admin Chen Jing · you]." in out
    assert "[admin Chen Jing · you] No open alerts" in out
    assert "Demo ended." in out


def test_the_demo_explains_itself_and_needs_no_token(tmp_path):
    done = demo(tmp_path, "", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps to the terminal width
    assert "No token is needed" in text and "--database" in text


def test_a_database_with_real_people_is_refused_and_left_alone(db, database_url, tmp_path):
    """--database keeps the demo in a database of its own; pointed at one with real people
    (the test database: SQLite, or PostgreSQL with CADRE_TEST_DATABASE_URL) it refuses."""
    from services import people

    db.call(people.ensure_admins, [424242], "zh-Hans")
    done = demo(tmp_path, "/quit\n", "--database", database_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "has people who are not the demo's" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert db.call(people.find, 1001) is None  # no demo cadre mixed into the real data
    assert [p.telegram_id for p in db.call(people.admins)] == [424242]
