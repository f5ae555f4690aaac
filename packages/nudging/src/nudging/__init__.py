"""Nudging: inference-time alignment via model collaboration."""

__version__ = "0.1.0"
