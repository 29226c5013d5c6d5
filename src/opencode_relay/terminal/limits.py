"""The bounds on what a browser may type into a terminal: frame size and frames per second."""

from __future__ import annotations

import time

from ..errors import InputRefused


class InputLimit:
    """A token bucket: `per_second` frames a second, bursts of up to as many."""

    def __init__(self, max_bytes: int, per_second: int) -> None:
        self.max_bytes = max_bytes
        self.per_second = per_second
        self._tokens = float(per_second)
        self._last = time.monotonic()

    def admit(self, size: int) -> None:
        """Counts one input frame of `size` bytes; raises InputRefused when it breaks a bound."""
        if size > self.max_bytes:
            raise InputRefused(f"terminal input frame of {size} bytes is over the "
                               f"{self.max_bytes}-byte limit", too_big=True)
        now = time.monotonic()
        self._tokens = min(float(self.per_second),
                           self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1:
            raise InputRefused(f"terminal input over {self.per_second} messages per second",
                               too_big=False)
        self._tokens -= 1
