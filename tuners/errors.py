"""Errors of the tuner layer; each message names the argument and the fix in one line."""

from __future__ import annotations


class TunerConfigError(ValueError):
    """A tuner name, budget or validation setting that cannot be used."""


class HistoryFileError(ValueError):
    """A histories file that cannot be found or read."""
