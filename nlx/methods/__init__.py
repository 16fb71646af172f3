"""Robust training methods, registered by name (see `base.py` for the interface)."""

from __future__ import annotations

from collections.abc import Callable

from nlx.methods.base import Batch, Method, Stage

_METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    def decorator(cls: type[Method]) -> type[Method]:
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorator


def method_names() -> list[str]:
    _import_builtin()
    return sorted(_METHODS)


def get_method(name: str) -> type[Method]:
    _import_builtin()
    return _METHODS[name]


def _import_builtin() -> None:
    from nlx.methods import ce, coteaching, dividemix, dmi, forward, ieg, ieg_dividemix, l2r, trevision  # noqa: F401  (each registers itself)


__all__ = ["Batch", "Method", "Stage", "get_method", "method_names", "register_method"]
