"""Errors that carry one line a user can act on.

The CLI prints them as `error: <message>` and exits with code 2, without a traceback.
"""

from __future__ import annotations


class KtlabError(ValueError):
    """Base class for bad input: the message names the problem and the fix."""


class DataError(KtlabError):
    """A data file, column or value that the pipeline cannot use."""


class TooManyFailedTrialsError(KtlabError):
    """The search ended because `max_consecutive_failed_trials` trials failed in a row."""


class ConfigError(KtlabError):
    """A configuration value or command-line flag that cannot be used."""
