"""One splitter (services.outbox.split.split_html) for direct replies and the outbox: it counts
what the reader sees (after character references; tags count nothing), never cuts inside a
reference or a tag, and every part is valid Telegram HTML on its own. Property tests with
Hypothesis (derandomized, a small budget), checked with the emulator's copy of Telegram's
HTML parser; then a reply of 4,000 "&" through the emulator."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.entities import utf16_len
from emulator.parse_html import parse_html
from services.i18n import plain_text
from services.outbox.split import parts_of, split_html, visible_length
from tests.handlers.test_broadcast import admin_in, compose

PROPERTY = settings(
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Words of any script (no surrogates or control characters), emoji, and the characters that
# HTML escapes; whitespace comes in short runs between them.
_words = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="\u2028\u2029"
    ),
    min_size=1,
    max_size=16,
) | st.sampled_from(["&", "<", ">", '"', "&amp;", "😀", "字字字", "a" * 70])
_gaps = st.sampled_from([" ", "\n", "  ", " \n", "\n\n", ""])


@st.composite
def _plain(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.tuples(_words, _gaps), min_size=1, max_size=10))
    return "".join(word + gap for word, gap in pieces)


_TAGS = ["b", "i", "u", "s", "code", "tg-spoiler", 'a href="https://example.org/?a=1&amp;b=2"']


@st.composite
def telegram_html(draw: st.DrawFn, depth: int = 0) -> str:
    """Valid Telegram HTML: escaped text and (nested) tags."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.booleans()):
            tag = draw(st.sampled_from(_TAGS))
            name = tag.split()[0]
            inner = draw(telegram_html(depth + 1))
            parts.append(f"<{tag}>{inner}</{name}>")
        else:
            parts.append(html.escape(draw(_plain())))
    return "".join(parts)


def _seen(part: str) -> str:
    return parse_html(part).text  # raises on markup Telegram would refuse


def _same_words(joined: str, original: str) -> bool:
    """`joined` is `original` with at most some whitespace left out: a part that would be
    only blanks is not sent (Telegram trims every message, and refuses an empty one)."""
    i = 0
    for ch in original:
        if i < len(joined) and joined[i] == ch:
            i += 1
        elif not ch.isspace():
            return False
    return i == len(joined)


@PROPERTY
@given(text=telegram_html(), limit=st.integers(min_value=40, max_value=400))
def test_any_html_splits_into_valid_parts_that_fit_and_lose_nothing(text: str, limit: int) -> None:
    parts = split_html(text, limit)
    seen = [_seen(part) for part in parts]
    assert all(utf16_len(s) <= limit for s in seen)
    assert all(visible_length(part) == utf16_len(s) for part, s in zip(parts, seen, strict=True))
    assert all(s.strip() for s in seen) or len(parts) == 1
    assert _same_words("".join(seen), _seen(text))


@PROPERTY
@given(text=telegram_html(), first=st.integers(min_value=40, max_value=120))
def test_a_caption_first_part_has_its_own_limit(text: str, first: int) -> None:
    parts = split_html(text, 200, first_limit=first)
    assert utf16_len(_seen(parts[0])) <= first
    assert all(utf16_len(_seen(p)) <= 200 for p in parts[1:])
    assert _same_words("".join(_seen(p) for p in parts), _seen(text))


def test_a_thousand_ampersands_are_never_cut_inside_a_reference() -> None:
    text = html.escape("&" * 5000)
    parts = split_html(text)
    assert len(parts) == 2
    assert all(re.fullmatch(r"(&amp;)+", part) for part in parts)
    assert [utf16_len(_seen(p)) for p in parts] == [4096, 904]


def test_references_count_as_the_character_telegram_shows() -> None:
    assert visible_length("&amp;&lt;&gt;&quot;&#x27;&#39;&#128512;") == 8  # 😀 counts two
    assert visible_length("&nbsp;") == 6  # Telegram leaves unknown names as they are
    assert visible_length("&amp") == 1  # the ';' is optional, as in Telegram's parser
    assert visible_length("<b>x</b>") == 1


def test_a_long_blank_stretch_is_not_sent_as_a_message_of_its_own() -> None:
    text = "a\n" + " " * 300 + "\nb"
    parts = split_html(text, 100)
    assert all(_seen(p).strip() for p in parts)
    assert "".join(_seen(p) for p in parts).split() == ["a", "b"]


@pytest.mark.asyncio
async def test_a_direct_reply_of_4000_ampersands_arrives_whole_and_valid(bot) -> None:
    """The broadcast preview is a direct reply (handlers.common.reply): before, it was split
    on raw HTML, so a part ended in "&am" and Telegram refused the next."""
    admin = admin_in(bot, "en")
    await compose(admin, "&" * 4000)
    await admin.press("bw:a:all")
    preview = await admin.wait_for(lambda m: "&" * 50 in m.text)
    texts = [m.text for m in admin.bot_messages if m.message_id >= preview.message_id]
    await admin.wait_for(lambda m: m.reply_markup is not None and "bw:go" in str(m.reply_markup))
    texts = [m.text for m in admin.bot_messages if m.message_id >= preview.message_id]
    assert "".join(texts).count("&") == 4000
    assert all("&am" not in t and not t.startswith("p;") for t in texts)
    assert all(len(t) <= 4096 for t in texts)
    assert "went wrong" not in " ".join(texts)


# ---------------------------------------------------------- long texts, by example


def test_short_texts_are_left_alone():
    assert split_html("<b>hi</b> &amp; bye") == ["<b>hi</b> &amp; bye"]


def test_long_texts_split_at_line_breaks_and_keep_every_character():
    lines = [f"line {i}: " + "字" * 50 for i in range(300)]
    text = "\n".join(lines)
    parts = split_html(text)
    assert len(parts) > 1
    assert all(visible_length(p) <= 4096 for p in parts)
    assert "".join(parts) == text
    assert all(p.endswith("\n") for p in parts[:-1])


def test_tags_open_at_a_split_are_closed_and_reopened():
    text = "<b>" + ("bold words " * 1000) + "</b><i>tail &lt;ok&gt;</i>"
    parts = split_html(text, 4096)
    assert len(parts) == 3
    for part in parts:
        parsed = parse_html(part)  # the emulator's copy of Telegram's parser: valid HTML
        assert len(parsed.text) <= 4096
    assert plain_text("".join(parts)).replace(" ", "") == plain_text(text).replace(" ", "")
    assert parts[1].startswith("<b>") and parts[0].endswith("</b>")


def test_a_word_longer_than_a_message_is_cut_but_not_lost():
    text = "x" * 9000
    parts = split_html(text)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_emoji_count_as_two_like_telegram():
    text = "😀" * 3000  # 6000 UTF-16 units
    parts = split_html(text)
    assert len(parts) == 2 and all(visible_length(p) <= 4096 for p in parts)
    assert "".join(parts) == text


def test_a_long_caption_becomes_a_captioned_file_and_texts():
    caption = "<i>" + "word " * 600 + "</i>"
    parts = parts_of("photo", {"photo": "file-id", "caption": caption})
    assert parts[0].kind == "photo" and visible_length(parts[0].text) <= 1024
    assert [p.kind for p in parts[1:]] == ["text"] * (len(parts) - 1)
    assert [p.last for p in parts] == [False] * (len(parts) - 1) + [True]
    assert plain_text("".join(p.text for p in parts)).split() == plain_text(caption).split()
