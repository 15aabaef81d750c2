"""CDR identities in one C call (``engine/mediation/_cdrid.c``) against engine.cdr.cdr_identity (hashlib).

The batch path trusts ``cdr_ids`` only because of these properties: over random prefixes and origin ids (any
length across the SHA-256 block boundaries, non-ASCII, line breaks) it gives exactly what hashlib gives, with
the CPU's SHA extensions and with the portable compression; what str.encode refuses it refuses too.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import cdr_identity, identity_prefix

_cdrid = pytest.importorskip("engine.mediation._cdrid", reason="the C extension is not built (test_the_extension_is_built says so)")
COMPRESSIONS = ["portable"] + (["sha-ni"] if _cdrid.compression() == "sha-ni" else [])


def _reference(prefix: str, origins: list[str]) -> list[str]:
    return [hashlib.sha256((prefix + o).encode("utf-8")).hexdigest()[:32] for o in origins]


@pytest.fixture(params=COMPRESSIONS)
def compression(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    before = _cdrid.compression()
    _cdrid.compression(request.param)
    yield request.param
    _cdrid.compression(before)


def test_the_extension_is_built() -> None:
    import engine.mediation.batch as batch

    assert batch._cdr_ids is not None, "engine/mediation/_cdrid.c was not built: run `make test` (pip install -e .)"


def test_every_length_around_the_block_boundaries(compression: str) -> None:
    """Padding takes one block up to 55 bytes of message, two from 56; whole blocks come straight from either part."""
    for plen in (0, 1, 9, 63, 64, 65, 130):
        prefix = "p" * plen
        origins = ["x" * n for n in range(0, 200)]
        assert _cdrid.cdr_ids(prefix, origins) == _reference(prefix, origins), (compression, plen)


def test_it_is_engine_cdr_identity() -> None:
    prefix = identity_prefix("asterisk", "mvno-alpha")
    assert _cdrid.cdr_ids(prefix, ["1764000000.1|2"]) == [cdr_identity("asterisk", "1764000000.1|2", "mvno-alpha")]


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(max_size=90), origins=st.lists(st.text(max_size=150), max_size=20))
def test_random_ids_hash_as_hashlib_does(prefix: str, origins: list[str]) -> None:
    try:
        expected = _reference(prefix, origins)
    except UnicodeEncodeError:   # a lone surrogate: str.encode refuses it, and so does cdr_ids (the batch path then declines)
        with pytest.raises(UnicodeEncodeError):
            _cdrid.cdr_ids(prefix, origins)
        return
    for name in COMPRESSIONS:
        before = _cdrid.compression()
        _cdrid.compression(name)
        try:
            assert _cdrid.cdr_ids(prefix, origins) == expected
        finally:
            _cdrid.compression(before)


def test_not_a_str_is_refused() -> None:
    with pytest.raises(TypeError):
        _cdrid.cdr_ids("p", ["a", b"b"])
    with pytest.raises(ValueError):
        _cdrid.compression("md5")
