"""the outbox wakes its relays: a statement-level trigger NOTIFYs channel hub_outbox on every insert into the
outbox (PostgreSQL delivers it at the commit, once per transaction), so a relay waits on LISTEN instead of
polling an idle outbox; SQLite has no NOTIFY (an embedded relay is woken in-process)

Revision ID: 0014
Revises: 0012
"""
from alembic import op

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE OR REPLACE FUNCTION hub_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('hub_outbox', '');
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
               "FOR EACH STATEMENT EXECUTE FUNCTION hub_outbox_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS hub_outbox_notify()")
