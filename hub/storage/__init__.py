"""Persistence: SQLAlchemy tables, engine set-up, the unit of work and migrations."""
