"""Options shared by the `gridmarket` commands, defined once so their help stays the same."""

from pathlib import Path
from typing import Annotated

import typer

from gridmarket.settings import DATABASE_URL_ENV, DEFAULT_DATA_DIR, HOME_ENV

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        help="The market's data directory: the SQLite store and the operator token "
        "(`serve` creates it, mode 0700).",
        show_default=f"${HOME_ENV}, else {DEFAULT_DATA_DIR}",
        file_okay=False,
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL of the store, e.g. postgresql://user@host/db.",
        show_default=f"${DATABASE_URL_ENV}, else the SQLite file in the data dir",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
