"""run links: which run another run started from (DMI's CE pretraining)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 17:15:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('source_run_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=50), nullable=False),
    sa.Column('checkpoint_tag', sa.String(length=50), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_links_run_id_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_run_id'], ['runs.id'], name=op.f('fk_run_links_source_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_links')),
    sa.UniqueConstraint('run_id', 'relation', name=op.f('uq_run_links_run_id_relation'))
    )
    with op.batch_alter_table('run_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_links_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_links_source_run_id'), ['source_run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_links_source_run_id'))
        batch_op.drop_index(batch_op.f('ix_run_links_run_id'))
    op.drop_table('run_links')
