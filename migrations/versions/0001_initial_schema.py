"""initial schema: runs, metric keys, epoch metrics, transition matrices, checkpoints, run labels

Revision ID: 0001
Revises: 
Create Date: 2026-12-04 16:10:43.150912
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_keys')),
    sa.UniqueConstraint('name', name=op.f('uq_metric_keys_name'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('spec_json', sa.Text(), nullable=False),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('noise_type', sa.String(length=20), nullable=False),
    sa.Column('noise_rate', sa.Float(), nullable=False),
    sa.Column('noise', sa.String(length=40), nullable=False),
    sa.Column('realised_noise_rate', sa.Float(), nullable=True),
    sa.Column('num_train', sa.Integer(), nullable=True),
    sa.Column('device', sa.String(length=40), nullable=True),
    sa.Column('host', sa.String(length=200), nullable=True),
    sa.Column('nlx_version', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('epochs_done', sa.Integer(), nullable=False),
    sa.Column('best_val_epoch', sa.Integer(), nullable=True),
    sa.Column('best_val_acc', sa.Float(), nullable=True),
    sa.Column('best_val_test_acc', sa.Float(), nullable=True),
    sa.Column('last_test_acc', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_config_hash'), ['config_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_dataset_model_method_noise'), ['dataset', 'model', 'method', 'noise'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_experiment'), ['experiment'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_status'), ['status'], unique=False)

    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=50), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_checkpoints_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints')),
    sa.UniqueConstraint('run_id', 'tag', name=op.f('uq_checkpoints_run_id_tag'))
    )
    op.create_table('epoch_metrics',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['metric_keys.id'], name=op.f('fk_epoch_metrics_key_id_metric_keys')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_epoch_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key_id', 'epoch', name=op.f('pk_epoch_metrics'))
    )
    with op.batch_alter_table('epoch_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_epoch_metrics_key_id_run_id'), ['key_id', 'run_id'], unique=False)

    op.create_table('run_labels',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('train_index', sa.LargeBinary(), nullable=False),
    sa.Column('noisy_labels', sa.LargeBinary(), nullable=False),
    sa.Column('flip_mask', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_labels_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_run_labels'))
    )
    op.create_table('transition_matrices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.String(length=50), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('estimator', sa.String(length=50), nullable=True),
    sa.Column('num_classes', sa.Integer(), nullable=False),
    sa.Column('values_json', sa.Text(), nullable=False),
    sa.Column('error', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_transition_matrices_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transition_matrices'))
    )
    with op.batch_alter_table('transition_matrices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transition_matrices_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transition_matrices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transition_matrices_run_id'))

    op.drop_table('transition_matrices')
    op.drop_table('run_labels')
    with op.batch_alter_table('epoch_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_epoch_metrics_key_id_run_id'))

    op.drop_table('epoch_metrics')
    op.drop_table('checkpoints')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_status'))
        batch_op.drop_index(batch_op.f('ix_runs_experiment'))
        batch_op.drop_index(batch_op.f('ix_runs_dataset_model_method_noise'))
        batch_op.drop_index(batch_op.f('ix_runs_config_hash'))

    op.drop_table('runs')
    op.drop_table('metric_keys')
