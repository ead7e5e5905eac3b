"""anju (安居): real-name smart locks and rental housing, PI protected by design."""

__version__ = "0.1.0"
