"""trusted set: the dataset indices of a run's trusted clean set (L2R, IEG)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('run_labels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted_index', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('run_labels', schema=None) as batch_op:
        batch_op.drop_column('trusted_index')
