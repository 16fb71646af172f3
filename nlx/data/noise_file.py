"""Noisy labels read from a file: real human label noise such as CIFAR-10N / CIFAR-100N.

Two formats, both loaded without executing code:
- ``.npy``: one integer vector (``np.load(allow_pickle=False)``);
- anything else: a torch-saved dict of label vectors (numpy arrays, tensors or lists), e.g.
  CIFAR-10N's ``{"aggre_label": ..., "worse_label": ..., "random_label1": ...}``, read with
  ``torch.load(weights_only=True)``; ``noise.key`` picks the entry.

Alignment: the vector has one label per sample of the dataset's *training set in its original
order*, i.e. the samples outside the dataset's given test split (CIFAR's data_batch_1..5, MNIST's
train file), before nlx carves validation; a dataset without a given split needs one label per
sample, and those of the samples nlx holds out for testing are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlx.errors import DataError


def _torch_safe_globals() -> list:
    """What unpickling numpy arrays needs: the reconstructor (under both numpy module names, as
    files saved with numpy 1 name ``numpy.core``), ndarray and the dtypes of integer labels."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [np.ndarray, np.dtype, (reconstruct, "numpy.core.multiarray._reconstruct"),
            (reconstruct, "numpy._core.multiarray._reconstruct"), *dtypes]


def _read_torch_dict(path: Path, key: str | None) -> np.ndarray:
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_torch_safe_globals()):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        reason = str(error).strip().splitlines()[0]
        raise DataError(f"noise.path: {path} is neither a .npy vector nor a torch-saved dict of label vectors ({reason})") from None
    if not isinstance(content, dict):
        return content
    keys = sorted(str(k) for k in content)
    if key is None:
        raise DataError(f"noise.key: {path} holds several label vectors; pick one of {keys}")
    if key not in content:
        raise DataError(f"noise.key: {path} has no {key!r}; keys: {keys}")
    return content[key]


def read_noisy_labels(path: str | Path, key: str | None = None) -> np.ndarray:
    """The (N,) int64 label vector in `path` (key `key` of a dict file)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"noise.path: no such file {path} (a .npy label vector or a torch-saved dict)")
    if path.suffix == ".npy":
        if key is not None:
            raise DataError(f"noise.key: {path} is a .npy vector, it has no keys")
        try:
            labels = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise DataError(f"noise.path: {path} is not a plain .npy array ({error})") from None
    else:
        labels = _read_torch_dict(path, key)
    labels = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"noise.path: expected a 1-D integer label vector, got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def align_noisy_labels(file_labels: np.ndarray, train_mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) noisy labels over the whole dataset: the file's labels at the training samples, -1 at
    the given test samples (which keep their true labels and are never read here).

    file_labels: (n_train,) in the dataset's training order; train_mask: (N,) bool.
    """
    expected = int(train_mask.sum())
    if len(file_labels) != expected:
        raise DataError(f"noise.path: {len(file_labels)} labels, but the training set has {expected} samples "
                        "(one label per training sample, in the dataset's original order)")
    if file_labels.size and (file_labels.min() < 0 or file_labels.max() >= num_classes):
        raise DataError(f"noise.path: labels must lie in [0, {num_classes})")
    noisy = np.full(len(train_mask), -1, dtype=np.int64)
    noisy[train_mask] = file_labels
    return noisy
