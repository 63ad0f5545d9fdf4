"""The request pipeline's quick look at a JSON body's bytes (`api/pipeline.py` `_plain`) never lets through what
the walk over the decoded body (`_scan`) would refuse: a NUL, a lone surrogate, nesting past MAX_DEPTH."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hub.api.pipeline import MAX_DEPTH, _plain, _scan

# Text of every kind, lone surrogates and NUL included; keys too.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=12)


def _deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@given(JSON, st.booleans())
def test_a_body_the_bytes_call_plain_holds_nothing_the_scan_refuses(value, escaped):
    raw = json.dumps(value, ensure_ascii=escaped).encode("utf-8", "surrogatepass")
    if b"\x00" in raw:
        return                                   # refused before either looks (a raw NUL byte)
    if _plain(raw):
        nul, depth, surrogate = _scan(json.loads(raw))
        assert not nul and not surrogate and depth <= MAX_DEPTH


def test_what_each_would_refuse_is_not_plain():
    assert not _plain(json.dumps({"name": "a\x00b"}).encode())                      # "\u0000"
    assert not _plain(json.dumps({"name": "\ud800"}).encode())                      # "\ud800"
    assert not _plain('{"name": "\ud800"}'.encode("utf-8", "surrogatepass"))        # its bytes, no escape
    assert not _plain(json.dumps(_deep(MAX_DEPTH + 1)).encode())
    assert _plain(json.dumps({"buyer": {"id": "b1", "name": "王小明"}, "qty": 1}, ensure_ascii=False).encode())
    assert _plain(json.dumps(_deep(MAX_DEPTH - 1)).encode())
