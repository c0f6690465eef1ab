"""Database-specific code, kept out of the domain modules: each module says why it is not the ORM.

Everything here has a portable fallback for the embedded SQLite default, so a local run without PostgreSQL
still works; ``make test-pg`` runs the PostgreSQL paths.
"""
