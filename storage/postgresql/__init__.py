"""The PostgreSQL backend: many instances over one database (see store.py)."""

from storage.postgresql import audit, brands, keys, missed_calls, opt_outs, organizations

#: The SQL modules ``storage.store.Store`` calls (as ``self.sql.<module>.<function>``).
__all__ = ["audit", "brands", "keys", "missed_calls", "opt_outs", "organizations"]
