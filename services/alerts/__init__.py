"""Alerts: SOS and red-flag health results reaching a human (policy, raising, respond,
cards, messages, timeline, coverage)."""
