"""Repository functions: every read and write of runs, metrics, matrices and checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import math
import contextlib
import os
import time
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, Select, delete, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import nlx
from nlx.errors import StoreError
from nlx.store.db import WRITE
from nlx.store.models import TRUE_T, Checkpoint, EpochMetric, MetricKey, Run, RunLabels, RunLink, TransitionMatrix, utcnow


if TYPE_CHECKING:  # pydantic's models and numpy are not needed to read the store
    import numpy as np

    from nlx.specs import RunSpec

EPOCH_METRICS = EpochMetric.__table__
RUNS = Run.__table__
_SQLITE_INSERT_METRIC = "INSERT INTO epoch_metrics (run_id, key_id, epoch, value) VALUES (?, ?, ?, ?)"


@dataclass(frozen=True)
class RunFilter:
    """Which runs a report covers; None means any."""

    run_ids: Sequence[int] | None = None
    experiment: str | None = None
    dataset: str | None = None
    model: str | None = None
    method: str | None = None
    noise: Sequence[str] | None = None  # e.g. ["sym0.4", "asym0.4"]
    status: str | None = None

    def apply(self, query: Select) -> Select:
        if self.run_ids:
            query = query.where(Run.id.in_(list(self.run_ids)))
        for column, value in (
            (Run.experiment, self.experiment),
            (Run.dataset, self.dataset),
            (Run.model, self.model),
            (Run.method, self.method),
            (Run.status, self.status),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.noise:
            query = query.where(Run.noise.in_(list(self.noise)))
        return query


# Every status a run can show: `pruned` ends a sweep trial stopped early by its pruner; `stale` is
# a `running` run whose heartbeat stopped (shown, never stored).
STATUSES = ("pending", "running", "finished", "failed", "interrupted", "pruned", "stale")

# A running run beats its heart at least every HEARTBEAT_EVERY_S; one silent for STALE_AFTER_S
# has crashed (killed, machine lost) and is reported as stale rather than running.
HEARTBEAT_EVERY_S = 30.0
WRITE_ATTEMPTS = 4
STALE_AFTER_S = float(os.environ.get("NLX_STALE_AFTER_S", 300))


def display_status(run: Run, now: datetime | None = None) -> str:
    """The run's status, with `stale` for a `running` run whose heartbeat has stopped."""
    if run.status == "running" and run.heartbeat_at is not None:
        silent = ((now or utcnow()) - run.heartbeat_at).total_seconds()
        if silent > STALE_AFTER_S:
            return "stale"
    return run.status


def array_bytes(array: np.ndarray) -> bytes:
    import numpy as np  # only the runs' labels are arrays: the report commands start without numpy

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def bytes_array(blob: bytes) -> np.ndarray:
    import numpy as np  # see array_bytes

    return np.load(io.BytesIO(blob), allow_pickle=False)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._write_session = sessionmaker(engine.execution_options(**WRITE), expire_on_commit=False)
        self._key_ids: dict[str, int] = {}

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A short write transaction holding the write lock from its start (see store.db).

        Should the lock stay busy past SQLite's busy timeout, taking it is retried a few times
        with a growing pause before the error is let through.
        """
        for attempt in range(WRITE_ATTEMPTS):
            session = self._write_session()
            try:
                session.connection()  # BEGIN (IMMEDIATE on SQLite) happens here
                break
            except OperationalError as error:
                session.close()
                if "locked" not in str(error) or attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * 2**attempt)
        with session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections; SQLite's last close also folds the WAL back into the file."""
        self.engine.dispose()

    # --- writes --------------------------------------------------------------------------
    def create_run(self, spec: RunSpec) -> int:
        with self.writing() as session:
            run = Run(
                experiment=spec.experiment,
                status="pending",
                spec_json=spec.model_dump_json(),
                spec_hash=spec.spec_hash(),
                config_hash=spec.config_hash(),
                seed=spec.seed,
                dataset=spec.data.label,
                model=spec.model.label,
                method=spec.method.name,
                noise_type=spec.noise.type,
                noise_rate=spec.noise.rate,
                noise=spec.noise.label,
                nlx_version=nlx.__version__,
            )
            session.add(run)
            session.flush()
            return run.id

    def start_run(
        self,
        run_id: int,
        device: str,
        train_index: np.ndarray,
        noisy_labels: np.ndarray,
        flip_mask: np.ndarray,
        true_T: np.ndarray,
        first_epoch: int = 0,
        trusted_index: np.ndarray | None = None,
    ) -> None:
        """Mark running and store what the noise did: labels, flip mask, realised rate, true T,
        and the dataset indices of the trusted set, if any.

        first_epoch > 0 resumes: rows of epochs from first_epoch on (written after the checkpoint
        the run resumes from) are deleted, so they are replaced and never duplicated.
        """
        import numpy as np  # see array_bytes

        with self.writing() as session:
            run = session.get(Run, run_id)
            run.status, run.error, run.finished_at = "running", None, None
            run.device, run.host = device, socket.gethostname()
            run.heartbeat_at = utcnow()
            run.started_at = run.started_at if first_epoch and run.started_at else run.heartbeat_at
            run.epochs_done = first_epoch
            run.num_train = int(len(noisy_labels))
            run.realised_noise_rate = float(np.mean(flip_mask)) if len(flip_mask) else 0.0
            session.merge(
                RunLabels(
                    run_id=run_id,
                    train_index=array_bytes(train_index.astype(np.int64)),
                    noisy_labels=array_bytes(noisy_labels.astype(np.int64)),
                    flip_mask=array_bytes(flip_mask.astype(bool)),
                    trusted_index=None if trusted_index is None else array_bytes(trusted_index.astype(np.int64)),
                )
            )
            session.execute(delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.epoch >= first_epoch))
            session.execute(
                delete(TransitionMatrix).where(
                    TransitionMatrix.run_id == run_id,
                    (TransitionMatrix.kind == TRUE_T) | (TransitionMatrix.epoch >= first_epoch),
                )
            )
            if first_epoch == 0:
                session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
            self._add_matrix(session, run_id, true_T, kind=TRUE_T)

    def save_checkpoints(self, run_id: int, checkpoints: Iterable[tuple[str, int, bytes]]) -> None:
        with self.writing() as session:
            for tag, epoch, blob in checkpoints:
                self._put_checkpoint(session, run_id, tag, epoch, blob)

    def log_epoch(
        self,
        run_id: int,
        epoch: int,
        metrics: dict[str, float],
        summary: dict[str, Any],
        checkpoints: Iterable[tuple[str, int, bytes]] = (),  # (tag, epoch of the state, bytes)
        matrices: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Everything one epoch produced, in one transaction: metrics, summary, checkpoints, T."""
        key_ids = self._metric_key_ids(metrics)
        with self.writing() as session:
            # Core statements on the tables: the ORM's bookkeeping costs more than these rows.
            connection = session.connection()
            rows = [{"run_id": run_id, "key_id": key_ids[key], "epoch": epoch, "value": _finite_or_none(value)}
                    for key, value in metrics.items()]
            if rows:  # an empty executemany would insert one row of NULLs
                connection.execute(EPOCH_METRICS.insert(), rows)
            connection.execute(
                RUNS.update().where(RUNS.c.id == run_id).values(epochs_done=epoch + 1, heartbeat_at=utcnow(), **summary)
            )
            for tag, state_epoch, blob in checkpoints:
                self._put_checkpoint(session, run_id, tag, state_epoch, blob)
            for matrix in matrices:
                self._add_matrix(session, run_id, epoch=epoch, **matrix)

    def log_epochs(
        self,
        run_id: int,
        epochs: Iterable[tuple[int, Mapping[str, float]]],
        summary: Mapping[str, Any] | None = None,
    ) -> int:
        """Many epochs of one run in one transaction: (epoch, {key: value}) pairs, then the
        run row's summary fields. The bulk path for importing a finished run's history, or for a
        writer that buffers epochs; returns the number of metric rows written.

        Rows go through the DB-API's executemany as tuples: at tens of millions of rows, building
        a dict per row and SQLAlchemy's per-row parameter processing cost more than SQLite does.
        """
        epochs = [(int(epoch), metrics) for epoch, metrics in epochs]
        key_ids = self._metric_key_ids(key for _, metrics in epochs for key in metrics)
        rows = [
            (run_id, key_ids[key], epoch, _finite_or_none(value))
            for epoch, metrics in epochs
            for key, value in metrics.items()
        ]
        done = max((epoch for epoch, _ in epochs), default=-1) + 1
        with self.writing() as session:
            connection = session.connection()
            if rows and self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql(_SQLITE_INSERT_METRIC, rows)  # qmark, column order
            elif rows:
                connection.execute(EPOCH_METRICS.insert(), [
                    {"run_id": r, "key_id": k, "epoch": e, "value": v} for r, k, e, v in rows
                ])
            values = {"heartbeat_at": utcnow(), **(summary or {})}
            if epochs:
                values["epochs_done"] = done
            connection.execute(RUNS.update().where(RUNS.c.id == run_id).values(**values))
        return len(rows)

    def heartbeat(self, run_id: int) -> None:
        with self.writing() as session:
            session.connection().execute(RUNS.update().where(RUNS.c.id == run_id).values(heartbeat_at=utcnow()))

    def link_runs(self, run_id: int, source_run_id: int, relation: str, checkpoint_tag: str | None = None) -> None:
        with self.writing() as session:
            session.add(RunLink(run_id=run_id, source_run_id=source_run_id, relation=relation, checkpoint_tag=checkpoint_tag))

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self.writing() as session:
            run = session.get(Run, run_id)
            run.status, run.error = status, error
            run.finished_at = utcnow()
            if run.started_at is not None:
                run.duration_s = (run.finished_at - run.started_at).total_seconds()

    def _put_checkpoint(self, session: Session, run_id: int, tag: str, epoch: int, blob: bytes) -> None:
        session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.tag == tag))
        session.add(
            Checkpoint(
                run_id=run_id, tag=tag, epoch=epoch, size_bytes=len(blob),
                sha256=hashlib.sha256(blob).hexdigest(), data=blob,
            )
        )

    @staticmethod
    def _add_matrix(session: Session, run_id: int, T: np.ndarray, kind: str, **fields: Any) -> None:
        import numpy as np  # see array_bytes

        T = np.asarray(T, dtype=float)
        session.add(
            TransitionMatrix(
                run_id=run_id, kind=kind, num_classes=T.shape[0], values_json=json.dumps(T.tolist()), **fields
            )
        )

    def _metric_key_ids(self, names: Iterable[str]) -> dict[str, int]:
        missing = list(dict.fromkeys(name for name in names if name not in self._key_ids))
        if missing:
            # Another process may insert the same names at the same time: ON CONFLICT DO NOTHING
            # (SQLite and PostgreSQL both have it), then read back whoever's ids won.
            if self.engine.dialect.name == "sqlite":  # each dialect's insert: imported when names are written
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            with self.writing() as session:
                connection = session.connection()
                connection.execute(
                    dialect_insert(MetricKey.__table__).on_conflict_do_nothing(), [{"name": name} for name in missing]
                )
                self._key_ids.update(
                    connection.execute(select(MetricKey.name, MetricKey.id).where(MetricKey.name.in_(missing))).all()
                )
        return self._key_ids

    # --- reads ---------------------------------------------------------------------------
    def get_run(self, run_id: int) -> Run:
        with self.session() as session:
            run = session.get(Run, run_id)
        if run is None:
            raise StoreError(f"no run {run_id} in this database (see `nlx ls`)")
        return run

    def reusable_run(self, spec_hash: str, checkpoint_tag: str) -> int | None:
        """The newest finished run with this spec hash that kept checkpoint `checkpoint_tag`."""
        query = (
            select(Run.id)
            .join(Checkpoint, (Checkpoint.run_id == Run.id) & (Checkpoint.tag == checkpoint_tag))
            .where(Run.spec_hash == spec_hash, Run.status == "finished")
            .order_by(Run.id.desc())
        )
        with self.session() as session:
            return session.scalars(query).first()

    def links(self, run_id: int) -> list[RunLink]:
        """Links from and to a run, oldest first."""
        query = select(RunLink).where((RunLink.run_id == run_id) | (RunLink.source_run_id == run_id))
        with self.session() as session:
            return list(session.scalars(query.order_by(RunLink.id)))

    def runs(self, where: RunFilter = RunFilter()) -> list[Run]:
        with self.session() as session:
            return list(session.scalars(where.apply(select(Run)).order_by(Run.id)))

    def run_rows(self, where: RunFilter = RunFilter(), columns: Sequence[str] | None = None) -> list[Row]:
        """Like `runs`, as plain rows with attribute access (row.dataset, ...), of `columns` only
        (default: all). What reports over thousands of runs read: no ORM objects to build, and
        a table that needs five columns does not fetch every spec's JSON."""
        selected = [RUNS.c[name] for name in columns] if columns else [RUNS]
        if columns and "id" not in columns:
            selected.insert(0, RUNS.c.id)
        with self.engine.connect() as connection:
            return list(connection.execute(where.apply(select(*selected)).order_by(RUNS.c.id)))

    def metrics(self, run_ids: Sequence[int], keys: Sequence[str] | None = None) -> list[tuple[int, str, int, float | None]]:
        """(run_id, key, epoch, value) rows, ordered by run, key and epoch."""
        query = (
            select(EpochMetric.run_id, MetricKey.name, EpochMetric.epoch, EpochMetric.value)
            .join(MetricKey, MetricKey.id == EpochMetric.key_id)
            .where(EpochMetric.run_id.in_(list(run_ids)))
            .order_by(EpochMetric.run_id, MetricKey.name, EpochMetric.epoch)
        )
        if keys:
            query = query.where(MetricKey.name.in_(list(keys)))
        with self.session() as session:
            return [tuple(row) for row in session.execute(query)]

    def matrices(self, run_ids: Sequence[int]) -> list[TransitionMatrix]:
        query = select(TransitionMatrix).where(TransitionMatrix.run_id.in_(list(run_ids)))
        with self.session() as session:
            return list(session.scalars(query.order_by(TransitionMatrix.run_id, TransitionMatrix.id)))

    def checkpoints(self, run_id: int) -> list[tuple[str, int, int, str]]:
        """(tag, epoch, size_bytes, sha256) of a run's checkpoints, without their bytes."""
        query = select(Checkpoint.tag, Checkpoint.epoch, Checkpoint.size_bytes, Checkpoint.sha256)
        with self.session() as session:
            return [tuple(row) for row in session.execute(query.where(Checkpoint.run_id == run_id).order_by(Checkpoint.tag))]

    def find_checkpoint(self, run_id: int, tag: str) -> bytes | None:
        """The checkpoint's bytes, or None when the run has none by that tag.
        Raises StoreError when the bytes fail their sha256 check."""
        with self.session() as session:
            row = session.execute(
                select(Checkpoint.data, Checkpoint.sha256).where(Checkpoint.run_id == run_id, Checkpoint.tag == tag)
            ).first()
        if row is None:
            return None
        if hashlib.sha256(row.data).hexdigest() != row.sha256:
            raise StoreError(f"run {run_id} checkpoint {tag!r} fails its sha256 check (corrupted)")
        return row.data

    def load_checkpoint(self, run_id: int, tag: str) -> bytes:
        blob = self.find_checkpoint(run_id, tag)
        if blob is None:
            raise StoreError(f"run {run_id} has no checkpoint {tag!r}")
        return blob

    def labels(self, run_id: int) -> dict[str, np.ndarray]:
        with self.session() as session:
            row = session.get(RunLabels, run_id)
        if row is None:
            raise StoreError(f"run {run_id} has no stored labels")
        return {
            "train_index": bytes_array(row.train_index),
            "noisy_labels": bytes_array(row.noisy_labels),
            "flip_mask": bytes_array(row.flip_mask),
            "trusted_index": None if row.trusted_index is None else bytes_array(row.trusted_index),
        }
