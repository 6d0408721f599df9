"""One error root for everything a user can get wrong, printed as ``file:line:col: error: ...``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Loc", "ArchcError", "InputShapeError", "SpecError", "YamlError", "SchemaError", "ExprError",
           "ResolveError", "ShapeError", "LimitError", "UsageError", "format_error", "raise_together"]


@dataclass(frozen=True)
class Loc:
    """A position in a source file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ArchcError(Exception):
    """Root of every error archc reports to a user; never shown as a traceback."""

    kind = "error"

    def __init__(self, message: str, loc: Loc | None = None, *, node: str | None = None,
                 hint: str | None = None, chain: tuple[Loc, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.node = node
        self.hint = hint
        self.chain = chain  # locations of the `extends:` that led to this file, outermost first
        self.others: list[ArchcError] = []  # further independent errors found in the same pass
        self.notes: list[str] = []  # context lines, e.g. which block instance this came from

    def located(self, loc: Loc | None, node: str | None = None) -> ArchcError:
        """Fill in a location and node path if the raiser did not know them."""
        if self.loc is None:
            self.loc = loc
        if self.node is None:
            self.node = node
        return self

    def copy(self) -> ArchcError:
        """The same error as a new object, with its own `others` and `notes` lists: re-raise a kept
        error as a copy, since whoever catches it extends those lists in place."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.args = self.args
        new.others, new.notes = list(self.others), list(self.notes)
        return new

    def __str__(self) -> str:
        return format_error(self, with_source=False)


class SpecError(ArchcError):
    """A problem in a spec (exit status 1)."""


class YamlError(SpecError):
    """Malformed or unsafe YAML."""


class SchemaError(SpecError):
    """A spec that does not match the JSON Schema."""


class ExprError(SpecError):
    """A ``${...}`` expression that cannot be parsed or evaluated."""


class ResolveError(SpecError):
    """Unknown names, bad arguments, cycles: anything found while expanding a spec."""


class ShapeError(SpecError):
    """Tensor shapes that do not fit together."""


class LimitError(SpecError):
    """A spec over a configured size limit (parameters, nodes, repeats, ...)."""


class InputShapeError(ArchcError, ValueError):
    """A tensor given to a compiled model does not have the shape the spec's input declares (raised at run
    time by archc.backend.inputs; also a ValueError, as torch's own shape complaints are)."""


class UsageError(ArchcError):
    """Bad command-line usage (exit status 2)."""


def raise_together(errors: list[ArchcError]) -> None:
    """Raise the first of several independent errors with the rest in its ``others`` (none: return)."""
    if errors:
        errors[0].others.extend(errors[1:])
        raise errors[0]


def get_close_matches(word: str, possibilities: list[str], n: int) -> list[str]:
    """difflib's, imported only when an error's hint asks (not on every command's start-up)."""
    from difflib import get_close_matches as close

    return close(word, possibilities, n)


def _source_line(loc: Loc) -> str | None:
    try:
        with open(loc.file, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, 1):
                if i == loc.line:
                    return line.rstrip("\n")
    except OSError:
        return None
    return None


def _clean(text: str) -> str:
    """Drop control characters so a hostile spec cannot garble the terminal."""
    return "".join(c if c.isprintable() or c == "\n" else "?" for c in text)


def format_error(err: ArchcError, with_source: bool = True) -> str:
    """Render an error as ``file:line:col: error: [node] message`` plus source line, caret, hint."""
    where = f"{err.loc}: " if err.loc else ""
    node = f"[{err.node}] " if err.node else ""
    lines = [_clean(f"{where}{err.kind}: {node}{err.message}")]
    if with_source and err.loc is not None:
        src = _source_line(err.loc)
        if src is not None and len(src) <= 400:
            lines.append("    " + _clean(src))
            lines.append("    " + " " * max(err.loc.col - 1, 0) + "^")
    for outer in reversed(err.chain):
        lines.append(f"  included from {outer}")
    lines.extend(_clean(f"  {note}") for note in err.notes)
    if err.hint:
        lines.append(_clean(f"  hint: {err.hint}"))
    seen = {(err.loc, err.message)}
    for other in err.others:
        if (other.loc, other.message) not in seen:  # the same line expanded many times: report it once
            seen.add((other.loc, other.message))
            lines.append(format_error(other, with_source))
    return "\n".join(lines)


def rel(path: str | Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
