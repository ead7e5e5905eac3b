"""The ``anju`` command line (Typer)."""
