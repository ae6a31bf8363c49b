"""Duty channels beyond Telegram: WeCom and DingTalk duty groups, and SMS (groups, sms,
alerting, checks, worker)."""
