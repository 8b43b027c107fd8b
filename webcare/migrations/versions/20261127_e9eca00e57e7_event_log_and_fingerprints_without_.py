"""Event log and fingerprints without foreign keys

Both are written in the transaction of the change they describe, and conversations are never deleted:
the keys guarded nothing, and checking them (a lookup and a row lock per row) was the largest part of
the database's work in taking a page of messages in.

Revision ID: e9eca00e57e7
Revises: 6de542cf7e80
Create Date: 2026-11-27 12:09:28.005393
"""
from __future__ import annotations

from alembic import op

revision = 'e9eca00e57e7'
down_revision = '6de542cf7e80'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversation_fingerprints', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_fingerprints_account_id_accounts'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_conversation_fingerprints_conversation_id_conversations'), type_='foreignkey')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_conversation_id_conversations'), type_='foreignkey')



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_events_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'])

    with op.batch_alter_table('conversation_fingerprints', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_conversation_fingerprints_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_conversation_fingerprints_account_id_accounts'), 'accounts', ['account_id'], ['id'])

