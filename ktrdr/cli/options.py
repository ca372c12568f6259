"""Options several commands share, declared once so their names and help never drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Bar store folder (default: $KTRDR_DATA_DIR, else ./data)."),
]
ModelsDirOption = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Model store (default: $KTRDR_MODELS_DIR, else ./models)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
