"""Persistence: SQLAlchemy Core (SQLite in WAL mode by default, any SQLAlchemy URL for a shared
deployment) with versioned migrations, plus the data directory for files."""
