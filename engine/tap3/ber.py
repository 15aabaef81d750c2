"""A small, fast BER (X.690) reader for TAP/RAP files.

The reader never builds a generic tree: :func:`children` splits the value of a
constructed element into ``(key, header_offset, value_start, value_end)``
tuples and the TAP decoders walk those with plain integer comparisons.  That
keeps decoding at a few hundred nanoseconds per element in pure Python.

A *key* packs the identifier octet's class and constructed bits with the tag
number: ``(first_octet & 0xE0) << 24 | number``.  :func:`prim` and
:func:`cons` build the keys of APPLICATION-class tags, the only class TAP uses.

Indefinite lengths are resolved by :func:`find_eoc`, which is iterative and
bounded by :data:`MAX_DEPTH`, so crafted input cannot exhaust the stack.
Every problem raises :class:`Tap3DecodeError` carrying the byte offset.
"""

from __future__ import annotations

from typing import Callable

MAX_DEPTH = 64          # nesting of indefinite-length elements; TAP 3.12 needs < 15
MAX_LENGTH_OCTETS = 8   # a definite length above 2**64 is nonsense for a file
MAX_INTEGER_OCTETS = 16  # 128-bit: far above any TAP amount, volume or code; bigger is garbage

_CLASS_NAMES = ("UNIVERSAL", "APPLICATION", "CONTEXT", "PRIVATE")


class Tap3DecodeError(ValueError):
    """The file cannot be decoded; ``offset`` is the byte where the problem is.

    ``code`` is stable (tests and callers switch on it), ``path`` names the
    TAP element being decoded when known (e.g. ``TransferBatch.auditControlInfo``).
    """

    def __init__(self, code: str, offset: int, message: str, path: str = "") -> None:
        self.code = code
        self.offset = offset
        self.message = message
        self.path = path
        where = f" in {path}" if path else ""
        super().__init__(f"byte {offset}: {code}: {message}{where}")


def prim(number: int) -> int:
    """Key of a primitive APPLICATION tag."""
    return 0x40000000 | number


def cons(number: int) -> int:
    """Key of a constructed APPLICATION tag."""
    return 0x60000000 | number


def key_number(key: int) -> int:
    return key & 0x0FFFFFFF


def key_constructed(key: int) -> bool:
    return bool(key & 0x20000000)


def describe_key(key: int) -> str:
    cls = _CLASS_NAMES[(key >> 30) & 3]
    form = "constructed" if key_constructed(key) else "primitive"
    return f"[{cls} {key_number(key)}] {form}"


def read_header(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """Read identifier and length at ``i``; returns ``(key, value_start, length)``.

    ``length`` is -1 for the indefinite form.  Does not check the value fits.
    """
    if i >= end:
        raise Tap3DecodeError("truncated", i, "expected an element, found the end of the data")
    t0 = buf[i]
    num = t0 & 0x1F
    j = i + 1
    if num == 0x1F:
        num = 0
        first = True
        while True:
            if j >= end:
                raise Tap3DecodeError("truncated", j, "tag number runs past the end of the data")
            b = buf[j]
            j += 1
            if first and b == 0x80:
                raise Tap3DecodeError("bad-tag", j - 1, "tag number has a leading zero octet")
            first = False
            num = (num << 7) | (b & 0x7F)
            if not b & 0x80:
                break
            if j - i > 5:
                raise Tap3DecodeError("bad-tag", i, "tag number longer than 4 octets")
    elif t0 == 0:
        raise Tap3DecodeError("misplaced-eoc", i, "end-of-contents octets where an element was expected")
    if j >= end:
        raise Tap3DecodeError("truncated", j, "length octets missing")
    ln = buf[j]
    j += 1
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0:
            if not t0 & 0x20:
                raise Tap3DecodeError("bad-length", j - 1, "indefinite length on a primitive element")
            return ((t0 & 0xE0) << 24) | num, j, -1
        if n == 0x7F or n > MAX_LENGTH_OCTETS:
            raise Tap3DecodeError("bad-length", j - 1, f"length uses {n} octets")
        if j + n > end:
            raise Tap3DecodeError("truncated", j, "length octets run past the end of the data")
        ln = int.from_bytes(buf[j:j + n], "big")
        j += n
    return ((t0 & 0xE0) << 24) | num, j, ln


def find_eoc(buf: bytes, i: int, end: int) -> int:
    """Offset of the end-of-contents octets closing an indefinite value starting at ``i``."""
    depth = 1
    while True:
        if i + 1 < end and buf[i] == 0:
            if buf[i + 1] != 0:
                raise Tap3DecodeError("bad-length", i, "end-of-contents octets must be 00 00")
            depth -= 1
            if depth == 0:
                return i
            i += 2
            continue
        if i >= end:
            raise Tap3DecodeError("truncated", i, "indefinite-length value has no end-of-contents")
        _key, vs, ln = read_header(buf, i, end)
        if ln < 0:
            depth += 1
            if depth > MAX_DEPTH:
                raise Tap3DecodeError("too-deep", i, f"more than {MAX_DEPTH} nested indefinite-length elements")
            i = vs
        else:
            i = vs + ln
            if i > end:
                raise Tap3DecodeError("length-overrun", vs, f"length {ln} runs past the enclosing element")


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """Split the value ``buf[start:end]`` of a constructed element into its elements.

    Returns ``(key, header_offset, value_start, value_end)`` per element; for an
    indefinite-length element ``value_end`` is where its end-of-contents begins.
    """
    out: list[tuple[int, int, int, int]] = []
    append = out.append
    i = start
    try:
        while i < end:
            # Fast path for what TAP is made of: tags of 1-3 octets and definite
            # lengths below 256.  It reads without bounds checks; anything odd
            # (or an IndexError at the end of the buffer) goes to read_header,
            # which checks everything and raises with the offset.
            t0 = buf[i]
            j = 0
            if t0 & 0x1F == 0x1F:
                num = buf[i + 1]
                if num < 0x80:
                    j = i + 2
                elif num != 0x80:
                    c = buf[i + 2]
                    if c < 0x80:
                        num = ((num & 0x7F) << 7) | c
                        j = i + 3
            elif t0:
                num = t0 & 0x1F
                j = i + 1
            if j:
                ln = buf[j]
                if ln < 0x80:
                    ve = j + 1 + ln
                    if ve <= end:
                        append((((t0 & 0xE0) << 24) | num, i, j + 1, ve))
                        i = ve
                        continue
                elif ln == 0x81:
                    ve = j + 2 + buf[j + 1]
                    if ve <= end:
                        append((((t0 & 0xE0) << 24) | num, i, j + 2, ve))
                        i = ve
                        continue
            i = _slow_child(buf, i, end, append)
    except IndexError:
        while i < end:
            i = _slow_child(buf, i, end, append)
    return out


def sole(buf: bytes, start: int, end: int, tag: bytes) -> int:
    """Value start of the only element in ``buf[start:end]`` if it has identifier ``tag``
    and a short definite length; -1 otherwise (the caller then uses :func:`children`).

    Many TAP groups wrap exactly one item; this skips building a list for them.
    """
    n = start + len(tag)
    if n < end and buf.startswith(tag, start):
        ln = buf[n]
        if ln < 0x80 and n + 1 + ln == end:
            return n + 1
    return -1


def _slow_child(buf: bytes, i: int, end: int, append: Callable[[tuple[int, int, int, int]], None]) -> int:
    key, vs, ln = read_header(buf, i, end)
    if ln < 0:
        ve = find_eoc(buf, vs, end)
        append((key, i, vs, ve))
        return ve + 2
    ve = vs + ln
    if ve > end:
        raise Tap3DecodeError("length-overrun", i, f"length {ln} runs past the enclosing element")
    append((key, i, vs, ve))
    return ve


def top_level(buf: bytes) -> tuple[int, int, int]:
    """The single element making up a file: ``(key, value_start, value_end)``.

    Bytes after it (even end-of-contents octets) are an error: a TAP file is
    exactly one DataInterChange/ReturnBatch/Acknowledgement value.
    """
    end = len(buf)
    if end == 0:
        raise Tap3DecodeError("truncated", 0, "empty file")
    key, vs, ln = read_header(buf, 0, end)
    if ln < 0:
        ve = find_eoc(buf, vs, end)
        stop = ve + 2
    else:
        ve = vs + ln
        if ve > end:
            raise Tap3DecodeError("truncated", end, f"file ends {ve - end} byte(s) before its outer element does")
        stop = ve
    if stop != end:
        raise Tap3DecodeError("trailing-bytes", stop, f"{end - stop} byte(s) after the end of the outer element")
    return key, vs, ve


# ---------------------------------------------------------------- primitive values


def integer(buf: bytes, vs: int, ve: int) -> int:
    """Two's complement INTEGER of any length."""
    if ve == vs:
        raise Tap3DecodeError("bad-value", vs, "INTEGER with no content octets")
    if ve - vs > MAX_INTEGER_OCTETS:
        raise Tap3DecodeError("bad-value", vs, f"INTEGER of {ve - vs} octets (at most {MAX_INTEGER_OCTETS} accepted)")
    return int.from_bytes(buf[vs:ve], "big", signed=True)


def ascii_text(buf: bytes, vs: int, ve: int) -> str:
    """TD.57 AsciiString: visible ISO 646; leading/trailing spaces are not significant."""
    raw = buf[vs:ve]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise Tap3DecodeError("bad-value", vs, f"non-ASCII octets {raw[:16].hex()} in a text item") from None
    if not text.isprintable():
        raise Tap3DecodeError("bad-value", vs, f"control characters in a text item: {text[:32]!r}")
    return text.strip(" ")


def digits(buf: bytes, vs: int, ve: int) -> str:
    """TD.57 NumberString: ASCII digits only."""
    text = ascii_text(buf, vs, ve)
    if not text.isdigit():
        raise Tap3DecodeError("bad-value", vs, f"expected digits, found {text[:32]!r}")
    return text


def bcd(buf: bytes, vs: int, ve: int) -> str:
    """TD.57 BCDString (IMSI, MSISDN, called numbers).

    Unlike 3GPP TBCD, TD.57 puts the *first* digit in the high nibble; a single
    ``f`` filler may close an odd number of digits.  (The conformance NRTRDE
    rendering of ``13 37 .. 3f`` as ``1337...133`` confirms the order.)
    """
    text = buf[vs:ve].hex()
    if text.endswith("f"):
        text = text[:-1]
    if "f" in text or not text:
        raise Tap3DecodeError("bad-value", vs, f"malformed BCD digits {buf[vs:ve][:16].hex()}")
    return text


# ---------------------------------------------------------------- identifier octets


def encode_tag(number: int, constructed: bool, cls: int = 1) -> bytes:
    """Identifier octets; ``cls`` 0..3 = UNIVERSAL, APPLICATION, CONTEXT, PRIVATE."""
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 0x1F:
        return bytes((first | number,))
    parts = [number & 0x7F]
    number >>= 7
    while number:
        parts.append(0x80 | (number & 0x7F))
        number >>= 7
    return bytes((first | 0x1F, *reversed(parts)))
