"""SQLite storage for orgsettings; nothing outside this package writes SQL."""

from storage.store import NotFoundError, Store, VersionMismatchError

__all__ = ["NotFoundError", "Store", "VersionMismatchError"]
