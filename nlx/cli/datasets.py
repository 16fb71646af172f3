"""`nlx datasets`: what can be trained on, and whether its files are there."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from nlx.cli.common import console, handle_errors


def register(app: typer.Typer) -> None:
    app.command("datasets")(datasets)


@handle_errors
def datasets(
    root: Annotated[Optional[str], typer.Option("--root", help="folder of disk datasets [default: $NLX_DATA, else ./data]", show_default=False)] = None,
    path: Annotated[Optional[str], typer.Option("--path", help="an .npz file to describe (the npz dataset)", show_default=False)] = None,
) -> None:
    """List every dataset with its classes, sizes (train / test when the split is given), views
    and their shapes, and whether its files are present under --root."""
    from nlx.data.catalog import describe_datasets  # numpy: only when listing datasets

    table = Table("name", "classes", "size", "views (shape per sample)", "files", "description")
    for row in describe_datasets(root, path):
        style = "red" if row.files.startswith("missing") else None
        table.add_row(row.name, row.classes, row.size, row.views, row.files, row.description, style=style)
    console.print(table)
