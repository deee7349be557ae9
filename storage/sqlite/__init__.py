"""The SQLite backend (sqlite-utils): connections, migrations, the group-commit writer, SQL."""

from storage.sqlite import audit, brands, keys, missed_calls, opt_outs, organizations

#: The SQL modules ``storage.store.Store`` calls (as ``self.sql.<module>.<function>``).
__all__ = ["audit", "brands", "keys", "missed_calls", "opt_outs", "organizations"]
