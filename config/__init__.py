from config.settings import Language, Settings

__all__ = ["Language", "Settings"]
