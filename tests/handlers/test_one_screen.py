"""One screen per message (issue 16, point 7): every catalog message, rendered in both
languages with realistic values (names, dates, a few list lines where a list goes), fits
on one phone screen: at most 12 lines of about 45 Latin or 32 Chinese characters. What is
longer is split, or sits behind a "more" button; the few texts that are read rather than
acted on (a document behind a button, the terminal demo) are listed below with why.

The messages the bot builds from several catalog texts (the SOS answer, a check-in result,
/help, alert cards) are measured where they are sent, in tests/handlers/test_one_screen_flows.py."""

from __future__ import annotations

import string
from zoneinfo import ZoneInfo

import pytest

from services import directory, examples, people
from services.i18n import LANGUAGES, catalog, t
from tests.support.screens import SCREEN, lines_on_phone

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the suggested dates are local ones

# Longer on purpose: key -> why it may be.
READ_NOT_ACTED_ON: dict[str, str] = {
    "form.consent.full": "the full consent text, sent only when «📄 Full text» is pressed",
    "form.consent_contact.full": "the same for an emergency contact's consent",
    "demo.intro": "the terminal demo's introduction (a terminal, not a phone)",
    "demo.help": "the terminal demo's command list (a terminal, not a phone)",
}


def _lines(*rows: str) -> str:
    return "\n".join(rows)


def realistic(lang: str) -> dict[str, str]:
    """Typical values of the placeholders, as the code fills them in `lang`."""
    zh = lang == "zh-Hans"
    name = "李伟" if zh else "Li Wei"
    posting = "甘孜州 · 理塘县" if zh else "Ganzi · Litang"
    reasons = _lines(
        "• " + t(lang, "health.reason.red_spo2_low"),
        "• " + t(lang, "health.reason.red_breathless_rest"),
    )
    vitals = "血氧 84% · 心率 104 · 路易斯湖评分 4/12" if zh else "SpO2 84% · HR 104/min · LLS 4/12"
    person_line = f"• {name} · {posting} · +8613800138000"
    return {
        "name": name,
        "real_name": name,
        "display_name": "Li",
        "person": f"{name}（{posting}）" if zh else f"{name} ({posting})",
        "cadre": name,
        "admin": "王芳" if zh else "Wang Fang",
        "actor": "张强" if zh else "Zhang Qiang",
        "by": "张强" if zh else "Zhang Qiang",
        "posting": posting,
        "prefecture": "甘孜州" if zh else "Ganzi",
        "area": "甘孜州" if zh else "Ganzi",
        "areas": "甘孜州、阿坝州" if zh else "Ganzi, Aba",
        "county": "理塘县" if zh else "Litang",
        "seat": "高城镇" if zh else "Litang",
        "home_unit": "杭州市卫生健康委员会（办公室）" if zh else "Hangzhou Health Commission",
        "phone": "+8613800138000",
        "contact": "王芳 +8613900139000" if zh else "Wang Fang +8613900139000",
        "contacts": "王芳 +8613900139000" if zh else "Wang Fang +8613900139000",
        "reasons": reasons,
        "details": _lines(reasons, vitals),
        "vitals": vitals,
        "people": _lines(person_line, person_line, person_line),
        "numbers": directory.render_seed("ganzi", lang),
        "names": "李伟、张强、王芳" if zh else "Li Wei, Zhang Qiang, Wang Fang",
        "note": "过垭口后一直头晕" if zh else "dizzy since the pass",
        "details_text": "headache and vomiting",
        "question": "家属可以来岗位探望吗？" if zh else "Can my family visit me at my posting?",
        "guess": "2022 年重点任务" if zh else "What are the 2022 Key Tasks?",
        "title": "2022 年重点任务" if zh else "Key Tasks 2022",
        "document": "2022 年重点任务" if zh else "Key Tasks 2022",
        "issuer": "四川省委组织部" if zh else "Organization Department of Sichuan",
        "body": "……",
        "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=00…",
        "link": "https://t.me/cadre_bot?start=inv_8f3k2m",
        "log": "var/demo.log",
        "files": "var/demo-files/",
        "text": "收到" if zh else "Received",
        "reason": "找不到该聊天" if zh else "chat not found",
        "error": "找不到主机" if zh else "host not found",
        "items": "体检（逾期 3 天）" if zh else "examination (3 days overdue)",
        "steps": "07:02 健康打卡危险；07:12 按下求助" if zh else "RED check-in 07:02; SOS 07:12",
        "shifts": "周一 08:00–20:00、周三 20:00–08:00" if zh else "Mon 08:00–20:00, Wed 20–08",
        "contents": "血压、脉搏、心肺检查、心电图、胸片、血红蛋白"
        if zh
        else "blood pressure, pulse, heart and lung, ECG, chest X-ray, haemoglobin",
        "when": "2026-11-27 18:30",
        "time": "2026-11-27 18:30",
        "date": "2026-11-27",
        "due": "2026-12-03",
        "start": "2026-11-01",
        "end": "2026-11-27",
        "at": "12:05",
        "version": people.CONSENT_VERSION,
    }


def rendered(lang: str, key: str) -> str:
    """The message with realistic values; a number (12) where the value is a count, an id
    or a figure; the suggested dates ({example_*}) of today in Shanghai."""
    text = catalog(lang)[key]
    values = realistic(lang)
    names = {n for _, n, _, _ in string.Formatter().parse(text) if n}
    filled = {n: values.get(n, 12) for n in names if not n.startswith("example_")}
    return t(lang, key, **{**examples.values(SHANGHAI), **filled, "count": 12})


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_message_fits_one_phone_screen(lang):
    long = {
        key: lines_on_phone(rendered(lang, key), html=True)
        for key in catalog(lang)
        if key not in READ_NOT_ACTED_ON
    }
    assert {key: n for key, n in long.items() if n > SCREEN} == {}


def test_the_measure_counts_wrapped_lines():
    assert lines_on_phone("a" * 45) == 1 and lines_on_phone("a" * 46) == 2
    assert lines_on_phone("中" * 32) == 1 and lines_on_phone("中" * 33) == 2
    assert lines_on_phone("one two\n\nthree") == 3
    assert lines_on_phone("<b>bold</b> &amp; more", html=True) == 1
    assert lines_on_phone("word " * 20) == 3  # 100 characters: words move whole
