"""Alembic migrations: env.py, the revision template and versions/, shipped in the wheel."""
