"""Errors of the monitor stage (bad input: a CLI exit code 2, a 4xx over HTTP)."""

from __future__ import annotations

from scaleml.errors import ScalemlError


class ContractError(ScalemlError, ValueError):
    """A contract cannot be read or used: missing, from a newer scaleml, or not matching the
    data it is checked against."""


class ContractViolation(ScalemlError, ValueError):
    """Data breaks a contract; the message names the row, the column, the value and the bound.

    Attributes:
        row, column, value, bound: the first violation found.
    """

    def __init__(self, message: str, *, row: int, column: str, value: object, bound: str):
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column
        self.value = value
        self.bound = bound
