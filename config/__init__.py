from config.settings import Language, Settings, get_settings

__all__ = ["Language", "Settings", "get_settings"]
