"""Alembic environment for the notifications service's tables (run programmatically)."""

from alembic import context

from services.notifications.store import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # Each service keeps its own version table, so services can share one database.
    version_table="alembic_version_notifications",
    render_as_batch=connection.dialect.name == "sqlite",
    # Only this service's tables: another service's, in a shared database, are not ours.
    include_name=lambda name, type_, _parent: (
        type_ != "table" or (name or "").startswith("notifications_")
    ),
)
with context.begin_transaction():
    context.run_migrations()
