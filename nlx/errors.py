"""Errors that the command line turns into a one-line message and an exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the report commands import no pydantic
    from pydantic import ValidationError


class NlxError(Exception):
    """A problem the user can fix; `exit_code` 2 means bad input, nothing was written."""

    exit_code = 2


class SpecError(NlxError):
    """An invalid experiment spec, override or argument."""


class DataError(NlxError):
    """A dataset or label file that is missing or malformed; the message says what was expected where."""


class StoreError(NlxError):
    """A missing, foreign or mismatched database, or an unknown run."""


class NestedFieldErrors(ValueError):
    """Raised inside a validator that validates a nested model of its own (a method's Params),
    so that the messages still name the full dotted path (`method.params.alpha`)."""

    def __init__(self, error: ValidationError, path: str):
        self.items = [(".".join(p for p in (path, sub) if p), message) for sub, message in field_messages(error)]
        super().__init__("; ".join(f"{p}: {m}" for p, m in self.items))


def field_messages(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted path, message) for each problem in a pydantic error."""
    items = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"] if part != "__root__")
        nested = item.get("ctx", {}).get("error")
        if isinstance(nested, NestedFieldErrors):
            items += [(".".join(p for p in (path, sub) if p), message) for sub, message in nested.items]
            continue
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
        items.append((path, message))
    return items


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line naming each offending field by its dotted path, e.g. `noise.rate: ...`."""
    parts = []
    for path, message in field_messages(error):
        path = ".".join(p for p in (prefix, path) if p)
        parts.append(f"{path}: {message}" if path else message)
    return "; ".join(parts)
