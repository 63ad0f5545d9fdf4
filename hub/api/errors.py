"""The error a handler raises to answer with a status: a leaf, so the parsers and the call share it."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error with its code and reason; `extra` goes into the body beside them."""

    def __init__(self, status: int, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra
