"""The board: a Telegram Mini App for duty officers and admins (docs/board.md)."""
