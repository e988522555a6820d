"""Alembic environment for the referral service's tables (run programmatically)."""

from alembic import context

from services.referral.store import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # Each service keeps its own version table, so services can share one database.
    version_table="alembic_version_referral",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
