async def test_help_for_a_stranger(bot):
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/help")
    msg = await user.next_message()
    assert "/start" in msg.text
