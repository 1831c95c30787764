"""Alembic migrations of the store's schema; run them with leadscore._store.migrate."""
