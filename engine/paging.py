"""Keyset paging shared by every list call: opaque tokens, bounded page sizes.

A token carries the sort key of the last item of its page (``after``) and the name of the list that issued it.  The
decoder takes both from the caller: a token of another list, or whose key does not have the shape that list sorts by
(a string, an integer, or a fixed sequence of those), is refused with INVALID_ARGUMENT on ``page_token`` -- the
stores receive only keys they can compare.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Union

from engine.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_KEY_TEXT = 512          # a key part that is text: ids, names and ISO times are far shorter
MAX_KEY_INT = 2**63 - 1     # a key part that is a number: a sequence or record number (a 64-bit column)

# the shape of a list's sort key: str, int, or a tuple of those for a key of several parts (sent as a JSON array)
KeyShape = Union[type, tuple[type, ...]]


@dataclass(frozen=True)
class Page:
    size: int
    after: Any = None   # the sort key of the last item of the previous page
    list: str = ""      # the list the token belongs to: its next token is bound to it too


def page_request(page_size: int, page_token: str, list_name: str, after: KeyShape) -> Page:
    """The page a list call asks for; ``list_name`` and ``after`` are that list's name and the shape of its sort key."""
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return Page(size, None, list_name)
    try:
        token = json.loads(base64.urlsafe_b64decode(page_token.encode("ascii")))
        key = token["after"]
        issued_for = token.get("list", "")
    except Exception:
        raise InvalidArgument.field("page_token", "not a token this server issued") from None
    if issued_for != list_name:
        raise InvalidArgument.field("page_token", "a token of another list: pass the next_page_token this call returned")
    if not _fits(key, after):
        raise InvalidArgument.field("page_token", "not a token this server issued (its position is not one of this list)")
    return Page(size, key, list_name)


def next_token(items: list[Any], page: Page, key: Any) -> str:
    """A token for the next page, or "" when this page is the last one."""
    if len(items) < page.size or not items:
        return ""
    token: dict[str, Any] = {"after": key(items[-1])}
    if page.list:
        token["list"] = page.list
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode("ascii")


def _fits(value: Any, shape: KeyShape) -> bool:
    if isinstance(shape, tuple):
        return isinstance(value, list) and len(value) == len(shape) and all(_fits(v, s) for v, s in zip(value, shape))
    if shape is int:
        # bool is an int in Python, not a position; a number past a 64-bit column is no row's
        return type(value) is int and 0 <= value <= MAX_KEY_INT
    if shape is str:
        return isinstance(value, str) and len(value) <= MAX_KEY_TEXT and "\x00" not in value and _utf8(value)
    return False


def _utf8(text: str) -> bool:
    """JSON can carry lone surrogates ("\\ud800"), which no database column takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
