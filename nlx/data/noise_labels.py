"""Parsing a noise label such as ``"sym0.4"``, without numpy: the report commands sort and
filter runs by their noise and should not pay for the label-noise generators in
:mod:`nlx.data.noise`."""

from __future__ import annotations

import re

_LABEL_RE = re.compile(r"^(sym|usym|asym|classmap|inst)((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)$")
_LABEL_FORMS = (
    "'none', 'sym<r>', 'usym<r>', 'asym<r>', 'classmap<r>' or 'inst<r>' with 0 <= r < 1 (e.g. 'sym0.4'), "
    "or 'file:<key>'"
)


def parse_noise_label(text: str) -> tuple[str, float]:
    """Parse ``"sym0.4"`` -> ``("sym", 0.4)``; ``"none"`` -> ``("none", 0.0)``."""
    text = text.strip()
    if text == "none":
        return "none", 0.0
    if text.startswith("file:") and len(text) > 5:  # noise read from a file has no rate
        return "file", 0.0
    m = _LABEL_RE.match(text)
    if m is None:
        raise ValueError(f"bad noise label {text!r}; expected {_LABEL_FORMS}")
    rate = float(m.group(2))
    if not rate < 1.0:
        raise ValueError(
            f"bad noise label {text!r}: rate {rate:g} not in [0, 1); expected {_LABEL_FORMS}"
        )
    return m.group(1), rate
