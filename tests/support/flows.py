"""Multi-step journeys that several tests walk, written once."""

from __future__ import annotations

from emulator.driver import FakeUser


async def begin_in_english(user: FakeUser, payload: str = "") -> None:
    """/start, pick English, agree to the consent: the form then asks for the real name."""
    await user.send(f"/start {payload}".strip())
    await user.wait_for("choose your language")
    await user.press("English")
    await user.wait_for("Separate consent")
    await user.press("f:consent:yes")
    await user.wait_for("real name")


async def to_the_altitude_in_english(
    user: FakeUser, county: str, *, name: str = "Li Wei", payload: str = ""
):
    """From /start to the altitude question (returned) for a posting in `county`."""
    await begin_in_english(user, payload)
    await user.send(name)
    await user.wait_for("phone number")
    await user.send("13800138000")
    await user.wait_for("home unit")
    await user.send("Hangzhou Health Commission")
    await user.wait_for("Where are you posted?")
    await user.press(f"f:pref:{county.split('.')[0]}")
    await user.wait_for("choose your county")
    await user.press(f"f:cty:{county}")
    return await user.wait_for(lambda m: "altitude" in m.content)


async def register_in_english(
    user: FakeUser, *, name: str = "Li Wei", county: str = "aba.barkam", payload: str = ""
) -> None:
    """Fill the whole registration form in English (county seat altitude) and submit it."""
    await to_the_altitude_in_english(user, county, name=name, payload=payload)
    await user.press("f:alt:seat")
    await finish_after_altitude_in_english(user)
    await user.press("f:ok:submit")


async def finish_after_altitude_in_english(user: FakeUser, contact_phone: str = "13900139000"):
    """From the assignment start to the summary (returned), in English."""
    await user.wait_for("assignment start")
    await user.press("f:start:today")
    await user.wait_for("due to end")
    await user.press("f:end:1")
    await user.wait_for("emergency contact")
    await user.send("Wang Fang")
    await user.wait_for("emergency contact's phone")
    await user.send(contact_phone)
    return await user.wait_for("check your details")


async def register_contact_in_english(user: FakeUser, *, name: str, payload: str) -> None:
    """A cadre's emergency contact joins through their invitation: a short form."""
    await user.send(f"/start {payload}")
    await user.wait_for("choose your language")
    await user.press("English")
    await user.wait_for("emergency contact's data")
    await user.press("f:consent:yes")
    await user.wait_for("real name")
    await user.send(name)
    await user.wait_for("phone number")
    await user.send("13900139000")
    await user.wait_for("check your details")
    await user.press("f:ok:submit")
