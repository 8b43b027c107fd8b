"""Metrics rows, links and messages without redundant foreign keys

Like the event log's and the fingerprints' (e9eca00e57e7): rows written with the conversation they
belong to, where conversations, accounts and departments are never deleted. A message keeps its key to
its conversation.

Revision ID: 98182bbc40e6
Revises: e9eca00e57e7
Create Date: 2026-11-27 12:36:19.178452
"""
from __future__ import annotations

from alembic import op

revision = '98182bbc40e6'
down_revision = 'e9eca00e57e7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversation_links', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_links_conversation_id_conversations'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_conversation_links_linked_id_conversations'), type_='foreignkey')

    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_metrics_conversation_id_conversations'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_conversation_metrics_department_id_departments'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_conversation_metrics_account_id_accounts'), type_='foreignkey')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_account_id_accounts'), type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_messages_account_id_accounts'), 'accounts', ['account_id'], ['id'])

    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_conversation_metrics_account_id_accounts'), 'accounts', ['account_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_conversation_metrics_department_id_departments'), 'departments', ['department_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_conversation_metrics_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('conversation_links', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_conversation_links_linked_id_conversations'), 'conversations', ['linked_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_conversation_links_conversation_id_conversations'), 'conversations', ['conversation_id'], ['id'], ondelete='CASCADE')

