"""One person's updates are handled in the order they were sent; different people's at once."""

from __future__ import annotations

import asyncio

from telegram import Chat, Message, Update, User

from bot.updates import PerChatUpdateProcessor


def update(update_id: int, chat_id: int) -> Update:
    user = User(chat_id, "U", is_bot=False)
    message = Message(update_id, None, Chat(chat_id, "private"), from_user=user, text="x")
    return Update(update_id, message=message)


async def test_same_chat_in_order_other_chats_concurrently():
    processor = PerChatUpdateProcessor(16)
    log: list[str] = []
    gate = asyncio.Event()

    async def handle(name: str, wait: bool) -> None:
        log.append(f"start {name}")
        if wait:
            await gate.wait()
        log.append(f"end {name}")

    first = asyncio.create_task(processor.process_update(update(1, 10), handle("a1", True)))
    second = asyncio.create_task(processor.process_update(update(2, 10), handle("a2", False)))
    other = asyncio.create_task(processor.process_update(update(3, 20), handle("b1", False)))
    await other  # another person's update is not held up by a slow one
    assert "end b1" in log and "start a2" not in log
    gate.set()
    await asyncio.gather(first, second)
    assert log.index("end a1") < log.index("start a2")
