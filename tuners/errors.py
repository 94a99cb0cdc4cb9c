"""Errors of the tuner layer; each message names the argument and the fix in one line."""

from __future__ import annotations

import numbers


class TunerConfigError(ValueError):
    """A tuner name, budget or validation setting that cannot be used."""


class HistoryFileError(ValueError):
    """A histories file that cannot be found or read."""


def is_real(value: object) -> bool:
    """Whether `value` is a real number (numpy's included), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_integer(name: str, value: object, minimum: int) -> None:
    """Checks that `value` is a whole number of at least `minimum`.

    Raises:
        TunerConfigError: Naming `name`, the minimum and the value given.
    """
    # `bool` is an `int` subclass, but `factor=True` is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise TunerConfigError(f"{name} must be an integer of at least {minimum}, got {value!r}.")


def check_fraction(name: str, value: object) -> None:
    """Checks that `value` is a real number from 0 to 1.

    Raises:
        TunerConfigError: Naming `name` and the value given.
    """
    if not is_real(value) or not 0 <= value <= 1:
        raise TunerConfigError(f"{name} must be a number from 0 to 1, got {value!r}.")
