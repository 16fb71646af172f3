"""SQLAlchemy 2.x typed models. The Alembic migrations under migrations/ create these tables;
a test checks that the migrated schema equals these models."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Alembic's bookkeeping table gets its own name: Optuna's storage, which may share the database,
# uses its own Alembic with the default `alembic_version`.
VERSION_TABLE = "nlx_alembic_version"

# Kinds of transition matrix. Not "true": pandas would read a column of it as booleans.
TRUE_T = "truth"
ESTIMATED_T = "estimate"

# Experiment names of runs made by sweeps: a trial's run is stored under `sweep:STUDY` (left out of
# `nlx compare`: each trial is another setting, not a seed), the best parameters re-run over fresh
# seeds under `tuned:STUDY` (a row of its own in `nlx compare`).
TRIAL_PREFIX = "sweep:"
TUNED_PREFIX = "tuned:"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Run(Base):
    """One training run: its spec, its status, and the summary that tables read."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # pending|running|finished|failed|interrupted|pruned
    error: Mapped[str | None] = mapped_column(Text)
    spec_json: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))  # everything but the experiment name
    config_hash: Mapped[str] = mapped_column(String(64))  # ... and but the seed: groups seeds
    seed: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(100))
    noise_type: Mapped[str] = mapped_column(String(20))
    noise_rate: Mapped[float] = mapped_column(Float)
    noise: Mapped[str] = mapped_column(String(40))  # e.g. "sym0.4": the compare column
    realised_noise_rate: Mapped[float | None] = mapped_column(Float)
    num_train: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(40))
    host: Mapped[str | None] = mapped_column(String(200))
    nlx_version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    best_val_epoch: Mapped[int | None] = mapped_column(Integer)
    best_val_acc: Mapped[float | None] = mapped_column(Float)
    best_val_test_acc: Mapped[float | None] = mapped_column(Float)
    last_test_acc: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index(None, "dataset", "model", "method", "noise"),
        Index(None, "experiment"),
        Index(None, "status"),
        Index(None, "config_hash"),
    )


class MetricKey(Base):
    """Metric names, stored once: epoch rows carry a small integer instead of the string."""

    __tablename__ = "metric_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class EpochMetric(Base):
    """One value of one metric at one epoch of one run (long format)."""

    __tablename__ = "epoch_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("metric_keys.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)  # NULL when not finite

    # The primary key (run, key, epoch) serves per-run queries; this one serves per-key ones.
    __table_args__ = (Index(None, "key_id", "run_id"),)


class TransitionMatrix(Base):
    """A true or estimated transition matrix T[i, j] = P(noisy = j | true = i)."""

    __tablename__ = "transition_matrices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # TRUE_T | ESTIMATED_T
    stage: Mapped[str | None] = mapped_column(String(50))
    epoch: Mapped[int | None] = mapped_column(Integer)
    estimator: Mapped[str | None] = mapped_column(String(50))
    num_classes: Mapped[int] = mapped_column(Integer)
    values_json: Mapped[str] = mapped_column(Text)  # row-major nested list
    error: Mapped[float | None] = mapped_column(Float)  # sum|T_hat - T| / sum|T|
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """A saved training state (torch.save bytes), checked by sha256 on load."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(50))  # last | best | epoch5 ...
    epoch: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "tag"),)


class RunLabels(Base):
    """The training split of a run: dataset indices, noisy labels and flip mask (npy bytes), and
    the dataset indices of its trusted set when it has one (true labels, carved before noise)."""

    __tablename__ = "run_labels"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    train_index: Mapped[bytes] = mapped_column(LargeBinary)
    noisy_labels: Mapped[bytes] = mapped_column(LargeBinary)
    flip_mask: Mapped[bytes] = mapped_column(LargeBinary)
    trusted_index: Mapped[bytes | None] = mapped_column(LargeBinary)


# Relations between runs. A fine-tuning run (DMI) starts from another run's checkpoint.
INIT_FROM = "init_from"


class RunLink(Base):
    """`run_id` depends on `source_run_id` in the way `relation` says (e.g. init_from: it started
    from that run's best checkpoint)."""

    __tablename__ = "run_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    source_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(50))
    checkpoint_tag: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "relation"),)
