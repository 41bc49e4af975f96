"""JSON text of validated task parameters, per task on the bulk path: the stdlib's C encoder
made once, where json.dumps makes one a call (half its cost for a small object). For data
without cycles only (submit's checks refuse deeper nesting than payload.MAX_DEPTH, so there
are none); the text is exactly json.dumps's, a test checks it."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

Encode = Callable[[Any], str]
# json's C encoder (not in typeshed's stubs); None on a Python without the accelerator.
c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def _encoder(item: str, key: str, default: Callable[[Any], Any] | None) -> Encode:
    """json.dumps(value, separators=(item, key), default=default) for acyclic values."""
    slow = json.JSONEncoder(separators=(item, key), default=default).encode
    if c_make_encoder is None:  # a Python without the C accelerator
        return slow
    fail = json.JSONEncoder().default  # json.dumps's TypeError for what is not JSON
    encode = c_make_encoder(None, default or fail, encode_basestring_ascii, None, key, item,
                            False, False, True)

    def text(value: Any) -> str:
        if isinstance(value, dict | list):
            return "".join(encode(value, 0))
        return slow(value)
    return text


# As json.dumps(value) writes it (what Celery's messages carry).
spaced: Encode = _encoder(", ", ": ", None)
# As records write their JSON fields: compact, anything else as its str().
compact: Encode = _encoder(",", ":", str)
