"""response-time metrics, SLA targets and business hours

Revision ID: 753dd4b91fc0
Revises: 5f607f381c2c
Create Date: 2026-11-27 06:35:57.629689
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '753dd4b91fc0'
down_revision = '5f607f381c2c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_counts',
    sa.Column('dim', sa.String(length=1), nullable=False),
    sa.Column('grain', sa.String(length=1), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('key', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('metric', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('bucket', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('n', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('dim', 'grain', 'period', 'key', 'metric', 'bucket', name=op.f('pk_metric_counts'))
    )


    op.create_table('business_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('week', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('holidays', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_business_hours_department_id_departments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_hours')),
    sa.UniqueConstraint('scope', name=op.f('uq_business_hours_scope'))
    )


    op.create_table('sla_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('within_minutes', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=10), nullable=False),
    sa.Column('outside_hours_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("clock IN ('business', 'calendar')", name=op.f('ck_sla_targets_clock')),
    sa.CheckConstraint("metric IN ('first_response', 'resolution')", name=op.f('ck_sla_targets_metric')),
    sa.CheckConstraint('account_id IS NULL OR department_id IS NULL', name=op.f('ck_sla_targets_one_scope')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sla_targets_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_sla_targets_department_id_departments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_targets')),
    sa.UniqueConstraint('scope', 'metric', name=op.f('uq_sla_targets_scope_metric'))
    )


    op.create_table('conversation_metrics',
    sa.Column('conversation_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_seconds', sa.Double(), nullable=True),
    sa.Column('first_responder_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_seconds', sa.Double(), nullable=True),
    sa.Column('replies', sa.Integer(), server_default='0', nullable=False),
    sa.Column('escalated', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('reopened', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fr_target_id', sa.Integer(), nullable=True),
    sa.Column('fr_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fr_sla', sa.String(length=10), nullable=True),
    sa.Column('res_target_id', sa.Integer(), nullable=True),
    sa.Column('res_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('res_sla', sa.String(length=10), nullable=True),
    sa.CheckConstraint("fr_sla IN ('hit', 'breached', 'void')", name=op.f('ck_conversation_metrics_fr_sla')),
    sa.CheckConstraint("res_sla IN ('hit', 'breached', 'void')", name=op.f('ck_conversation_metrics_res_sla')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_conversation_metrics_account_id_accounts')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_metrics_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_conversation_metrics_department_id_departments')),
    sa.ForeignKeyConstraint(['first_responder_id'], ['users.id'], name=op.f('fk_conversation_metrics_first_responder_id_users')),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_conversation_metrics'))
    )
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_metrics_first_response_at', ['first_response_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_fr_due', ['fr_sla', 'fr_due_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_res_due', ['res_sla', 'res_due_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_resolved_at', ['resolved_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_started_at', ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_metrics_started_at')
        batch_op.drop_index('ix_conversation_metrics_resolved_at')
        batch_op.drop_index('ix_conversation_metrics_res_due')
        batch_op.drop_index('ix_conversation_metrics_fr_due')
        batch_op.drop_index('ix_conversation_metrics_first_response_at')

    op.drop_table('conversation_metrics')
    op.drop_table('sla_targets')
    op.drop_table('business_hours')
    op.drop_table('metric_counts')
