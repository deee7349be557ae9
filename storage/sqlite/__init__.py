"""The SQLite backend (sqlite-utils): connections, migrations, the group-commit writer, SQL."""
