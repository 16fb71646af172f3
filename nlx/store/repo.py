"""Repository functions: every read and write of runs, metrics, matrices and checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import math
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Select, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

import nlx
from nlx.errors import StoreError
from nlx.specs import RunSpec
from nlx.store.models import TRUE_T, Checkpoint, EpochMetric, MetricKey, Run, RunLabels, RunLink, TransitionMatrix, utcnow


EPOCH_METRICS = EpochMetric.__table__
RUNS = Run.__table__


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


def array_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def bytes_array(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)
        self._key_ids: dict[str, int] = {}

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections; SQLite's last close also folds the WAL back into the file."""
        self.engine.dispose()

    # --- writes --------------------------------------------------------------------------
    def create_run(self, spec: RunSpec) -> int:
        with self.session.begin() as session:
            run = Run(
                experiment=spec.experiment,
                status="pending",
                spec_json=spec.model_dump_json(),
                spec_hash=spec.spec_hash(),
                config_hash=spec.config_hash(),
                seed=spec.seed,
                dataset=spec.data.name,
                model=spec.model.arch,
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
    ) -> None:
        """Mark running and store what the noise did: labels, flip mask, realised rate, true T."""
        with self.session.begin() as session:
            run = session.get(Run, run_id)
            run.status, run.device, run.host = "running", device, socket.gethostname()
            run.started_at = run.heartbeat_at = utcnow()
            run.num_train = int(len(noisy_labels))
            run.realised_noise_rate = float(np.mean(flip_mask)) if len(flip_mask) else 0.0
            session.merge(
                RunLabels(
                    run_id=run_id,
                    train_index=array_bytes(train_index.astype(np.int64)),
                    noisy_labels=array_bytes(noisy_labels.astype(np.int64)),
                    flip_mask=array_bytes(flip_mask.astype(bool)),
                )
            )
            self._add_matrix(session, run_id, true_T, kind=TRUE_T)

    def log_epoch(
        self,
        run_id: int,
        epoch: int,
        metrics: dict[str, float],
        summary: dict[str, Any],
        checkpoints: Iterable[tuple[str, bytes]] = (),
        matrices: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Everything one epoch produced, in one transaction: metrics, summary, checkpoints, T."""
        key_ids = self._metric_key_ids(metrics)
        with self.session.begin() as session:
            # Core statements on the tables: the ORM's bookkeeping costs more than these rows.
            connection = session.connection()
            rows = [{"run_id": run_id, "key_id": key_ids[key], "epoch": epoch, "value": _finite_or_none(value)}
                    for key, value in metrics.items()]
            if rows:  # an empty executemany would insert one row of NULLs
                connection.execute(EPOCH_METRICS.insert(), rows)
            connection.execute(
                RUNS.update().where(RUNS.c.id == run_id).values(epochs_done=epoch + 1, heartbeat_at=utcnow(), **summary)
            )
            for tag, blob in checkpoints:
                self._put_checkpoint(session, run_id, tag, epoch, blob)
            for matrix in matrices:
                self._add_matrix(session, run_id, epoch=epoch, **matrix)

    def link_runs(self, run_id: int, source_run_id: int, relation: str, checkpoint_tag: str | None = None) -> None:
        with self.session.begin() as session:
            session.add(RunLink(run_id=run_id, source_run_id=source_run_id, relation=relation, checkpoint_tag=checkpoint_tag))

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        with self.session.begin() as session:
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
            dialect_insert = sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert
            with self.session.begin() as session:
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

    def load_checkpoint(self, run_id: int, tag: str) -> bytes:
        with self.session() as session:
            row = session.execute(
                select(Checkpoint.data, Checkpoint.sha256).where(Checkpoint.run_id == run_id, Checkpoint.tag == tag)
            ).first()
        if row is None:
            raise StoreError(f"run {run_id} has no checkpoint {tag!r}")
        if hashlib.sha256(row.data).hexdigest() != row.sha256:
            raise StoreError(f"run {run_id} checkpoint {tag!r} fails its sha256 check (corrupted)")
        return row.data

    def labels(self, run_id: int) -> dict[str, np.ndarray]:
        with self.session() as session:
            row = session.get(RunLabels, run_id)
        if row is None:
            raise StoreError(f"run {run_id} has no stored labels")
        return {
            "train_index": bytes_array(row.train_index),
            "noisy_labels": bytes_array(row.noisy_labels),
            "flip_mask": bytes_array(row.flip_mask),
        }
