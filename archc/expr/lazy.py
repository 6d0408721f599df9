"""Variables computed only when an expression reads them (``in_shape``: the shape flowing in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Lazy"]


class Lazy:
    """A value made by ``thunk`` on first read; copying an environment does not compute it."""

    __slots__ = ("_thunk", "_value", "_done")

    def __init__(self, thunk: Callable[[], Any]) -> None:
        self._thunk, self._value, self._done = thunk, None, False

    def get(self) -> Any:
        if not self._done:
            self._value, self._done = self._thunk(), True
        return self._value
