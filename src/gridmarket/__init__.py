"""Gridmarket: a self-hostable spot market for AI inference."""

__version__ = "0.1.0"
