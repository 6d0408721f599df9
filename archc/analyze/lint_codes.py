"""The lint codes and the warning they come as (lint.py lists what each one finds)."""

from __future__ import annotations

from archc.errors import ArchcError, Loc

__all__ = ["CODES", "LintWarning"]

CODES = {
    "W001": "dead branch: a node that nothing reads and that is not an output",
    "W002": "a channel-sized vector broadcast along a spatial axis",
    "W003": "repeat: 0",
    "W004": "stride larger than the kernel",
    "W005": "an input that looks channels-last",
    "W006": "a linear layer applied to a (C, H, W) map",
    "W007": "a biased convolution feeding a batchnorm",
    "W008": "a param never used",
    "W009": "a block never used",
    "W010": "a block argument never used",
    "W011": "a `when:` constant in every instance",
}


class LintWarning(ArchcError):
    """A located warning; ``code`` is one of :data:`CODES`. Never raised, only returned."""

    kind = "warning"

    def __init__(self, code: str, message: str, loc: Loc | None, *, node: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(f"{message} [{code}]", loc, node=node, hint=hint)  # as gcc: warning: ... [-Wunused]
        self.code = code
