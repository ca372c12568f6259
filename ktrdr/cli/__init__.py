"""The ``ktrdr`` command (Typer + Rich)."""
