"""The PostgreSQL backend: many instances over one database (see store.py)."""
