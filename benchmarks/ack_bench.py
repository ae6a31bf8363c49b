"""Acknowledgement round trip of the real `cadre-bot run`: a duty officer presses ✋ on an
SOS card, with no broadcast and then during a 10,000-recipient broadcast at Telegram's
30 messages/s, in one run (docs/benchmarks.md).

    .venv/bin/python benchmarks/ack_bench.py                     # 50 presses idle, 50 during
    .venv/bin/python benchmarks/ack_bench.py --presses 100 --database-url postgresql+psycopg://...

Same set-up as benchmarks/sos_bench.py (its database, bot process and broadcast): the
emulator in its own process with Telegram's flood limits on, the bot on a fresh database.
Each round: a cadre presses 🆘, the first on-duty officer of the prefecture gets the card
and presses ✋ on it. Round trip = from the press (the callback query pushed to the
emulator) to the bot's answer to it (answerCallbackQuery: "you are handling #12", the
officer's confirmation) and to the card's edit ("handled by ..."). Both are direct replies:
they go out at once, ahead of the broadcast's next message (bot.reply_limits.ReplyAccounting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator_process import EmulatorProcess  # noqa: E402  (benchmarks/, next to this script)
from sos_bench import (  # noqa: E402
    CADRES,
    OFFICERS,
    PREFECTURES,
    RECIPIENTS,
    _rounded,
    bench_run,
    serve_people,
    start_broadcast,
)

# ------------------------------------------------------------------ the emulator side


async def serve(cadres: int, recipients: int, per_second: float) -> None:
    """The emulator; commands on stdin: ``ready``, ``press <cadre>`` (the cadre's SOS, then
    ✋ by the officer), ``stats``, ``reset``, ``quit``."""
    presses: list[tuple[str, int, int, float]] = []  # query id, officer, card id, time

    async def handle(emu: Any, command: str, arg: str) -> dict | None:
        if command == "press":
            cadre = int(arg)
            officer = emu.user(officer_of(cadre), "Officer")
            await emu.user(cadre, "Cadre").send("/sos")
            card = await officer.wait_for(
                lambda m: f"Bench-{cadre}" in (m.text or "") and "sos:ack:" in str(m.reply_markup),
                timeout=30,
            )
            data = next(
                b["callback_data"]
                for row in card.reply_markup["inline_keyboard"]
                for b in row
                if b.get("callback_data", "").startswith("sos:ack:")
            )
            query = await officer.press(data, message=card)
            presses.append((query, officer.id, card.message_id, asyncio.get_running_loop().time()))
            return {"ok": True}
        if command == "reset":
            emu.requests.clear()
            emu.rate_limits.throttled.clear()
            presses.clear()
            return {"ok": True}
        if command == "stats":
            return _stats(emu, presses)
        return None

    await serve_people(cadres, recipients, per_second, handle)


def officer_of(cadre: int) -> int:
    return OFFICERS[list(PREFECTURES)[(cadre - CADRES) % 3]][0]


def _stats(emu: Any, presses: list[tuple[str, int, int, float]]) -> dict:
    answered: dict[str, float] = {}
    edits: dict[tuple[int, int], list[float]] = {}
    broadcast_sent = 0
    for r in emu.requests:
        if r.status != 200:
            continue
        if r.method == "answerCallbackQuery":
            answered.setdefault(str(r.params.get("callback_query_id")), r.time)
        elif r.method == "editMessageText":
            key = (int(r.params.get("chat_id", 0)), int(r.params.get("message_id", 0)))
            edits.setdefault(key, []).append(r.time)
        elif r.method == "sendMessage" and int(r.params.get("chat_id", 0)) >= RECIPIENTS:
            broadcast_sent += 1
    answer_ms, edit_ms, missing = [], [], 0
    for query, officer, card, at in presses:
        edited = [t for t in edits.get((officer, card), []) if t >= at]
        if query not in answered or not edited:
            missing += 1
            continue
        answer_ms.append((answered[query] - at) * 1000)
        edit_ms.append((edited[0] - at) * 1000)
    return {
        "presses": len(presses),
        "missing": missing,
        "answer_ms": sorted(answer_ms),
        "edit_ms": sorted(edit_ms),
        "broadcast_sent": broadcast_sent,
        "throttled_429": emu.rate_limits.count,
    }


# ------------------------------------------------------------------------- the bot side


def summary(stats: dict) -> dict:
    def pct(data: list[float], q: float) -> float | None:
        return data[min(len(data) - 1, int(len(data) * q))] if data else None

    answer, edit = stats["answer_ms"], stats["edit_ms"]
    return {
        "presses": stats["presses"],
        "unanswered": stats["missing"],
        "answer_p50_ms": statistics.median(answer) if answer else None,
        "answer_p99_ms": pct(answer, 0.99),
        "card_edited_p50_ms": statistics.median(edit) if edit else None,
        "card_edited_p99_ms": pct(edit, 0.99),
        "max_ms": max(edit + answer) if answer else None,
        "broadcast_sent_meanwhile": stats["broadcast_sent"],
        "throttled_429": stats["throttled_429"],
    }


async def run_presses(emu: EmulatorProcess, cadres: range, spacing: float) -> dict:
    emu.command("reset")
    for cadre in cadres:
        emu.command(f"press {cadre}")
        await asyncio.sleep(spacing)
    await asyncio.sleep(3)  # the last answers arrive
    return summary(emu.command("stats"))


async def main(args: argparse.Namespace) -> None:
    cadres = 2 * args.presses
    async with bench_run(
        __file__, "ack-bench-", cadres, args.broadcast, args.database_url, spacing_s=args.spacing
    ) as (db, emu, results):
        first = range(CADRES, CADRES + args.presses)
        results["no_broadcast"] = await run_presses(emu, first, args.spacing)
        if args.broadcast:
            start_broadcast(db)
            await asyncio.sleep(3)  # the broadcast is under way
            second = range(CADRES + args.presses, CADRES + cadres)
            results["during_broadcast"] = await run_presses(emu, second, args.spacing)
            results["during_broadcast"]["broadcast_recipients"] = args.broadcast
    print(json.dumps(_rounded(results), indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=50, help="presses per run (default 50)")
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--broadcast", type=int, default=10_000, help="0: no broadcast run")
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
