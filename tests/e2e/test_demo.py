"""`cadre-bot demo` end to end: the real command, driven by a script on stdin, as a newcomer
would try it (no token, no Telegram, a fresh database)."""

from __future__ import annotations

import csv
import io
import json
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
            "#1",
            "/as duty",
            "#1",  # ✋ 我来处理 on the alert
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
    assert "[duty 张强 · 您] › #1" in out
    told = next(line for line in out.splitlines() if "正在处理您的求助 #1" in line)
    assert told.startswith("[cadre 李伟]") and "张强（值班人员）" in told, told
    assert out.rstrip().endswith("演示结束。机器人的日志：var/demo.log")
    # the bot's log went to the file, not into the chat
    log = (tmp_path / "var" / "demo.log").read_text(encoding="utf-8")
    assert "SOS alert 1" in log
    assert "SOS alert" not in out


def test_bad_input_gets_a_clear_line_and_the_demo_goes_on(tmp_path):
    script = "\n".join(["/as boss", "#42", "/wait soon", "/as admin", "/alerts"])  # then EOF
    done = demo(tmp_path, script, "--language", "en")
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert "Traceback" not in out + done.stderr
    assert "There is no person “boss” in the demo: type /as cadre, /as duty or /as admin." in out
    assert "There is no button #42: the buttons shown to you are #1 to" in out
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


def test_pictures_and_files_are_saved_numbers_are_text_and_any_button_can_be_pressed(tmp_path):
    """The demo shows everything (issue 16, point 11): the chart and the exports are saved
    as real files; a number typed at a question is an answer, `#N` presses; /buttons
    reaches an earlier message's button; the pending registration can be approved."""
    script = "\n".join(
        [
            "/trend",  # the cadre's 30-day chart (a picture)
            "/mydata",  # everything stored about them (JSON)
            "/oxygen",  # their open request (demo data) and a button for a new one
            "#2",  # 🫁 New oxygen request
            "#1",  # Oxygen cylinder
            "300",  # "Where?": a place typed as a number is text, not button 300
            "/as admin",
            "/people",  # a later message with buttons
            "/buttons",  # [1] ✅ Approve on the registration request, which came first
            "#1",
            "/export",
            "#1",  # last 7 days: CSV and Excel
            "/quit",
        ]
    )
    done = demo(tmp_path, script, "--language", "en")
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    assert "Traceback" not in out + done.stderr
    files = tmp_path / "var" / "demo-files"
    saved = {p.name: p for p in files.iterdir()}
    chart = next(p for name, p in saved.items() if name.endswith(".png"))
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    mine = next(p for name, p in saved.items() if name.endswith(".json"))
    data = json.loads(mine.read_text(encoding="utf-8"))
    assert "Li Wei" in json.dumps(data, ensure_ascii=False)
    table = next(p for name, p in saved.items() if name.endswith(".csv"))
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert len(rows) >= 2 and any("red" in cell.lower() for row in rows for cell in row)
    for path in (chart, mine, table):
        assert f"(saved: var/demo-files/{path.name})" in out
    # a typed number is an answer: the oxygen form goes on to its next question
    assert "There is no button" not in out
    assert "(pressed: Oxygen cylinder)" in out
    assert out.index("› 300") < out.index("How urgent is it?")
    # /buttons numbered the registration request's buttons first, and #1 approved it
    listing = out[out.index("› /buttons") :]
    assert "  New registration request\n    [1] ✅ Approve" in listing
    assert "(pressed: ✅ Approve)" in listing
    assert "✅ Approved by Chen Jing" in listing
    assert "can no longer be reached" not in out


def test_the_demo_data_has_something_for_each_role_to_act_on(tmp_path):
    """A pending registration, a RED check-in, an open oxygen request and an overdue
    examination are there from the start."""
    done = demo(
        tmp_path, "/as duty\n/as admin\n/people\n/as cadre\n/history\n/quit\n", "--language", "en"
    )
    out = done.stdout
    assert done.returncode == 0, (out, done.stderr)
    notice = next(line for line in out.splitlines() if "Oxygen request #1" in line)
    assert notice.startswith("[duty Zhang Qiang]"), notice  # the officer on duty has it
    assert "New registration request" in out and "Wang Xiaoming" in out
    assert "pending approval" in out
    assert "🔴" in out[out.index("› /history") :]  # the RED evening in the history
    assert "physical examination to" in out  # the overdue exam, set by an admin
