"""Keyset paging shared by every list call: opaque tokens, bounded page sizes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page:
    size: int
    after: Any = None   # the sort key of the last item of the previous page


def page_request(page_size: int, page_token: str) -> Page:
    if page_size < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return Page(size)
    try:
        after = json.loads(base64.urlsafe_b64decode(page_token.encode("ascii")))["after"]
    except Exception:
        raise InvalidArgument.field("page_token", "not a token this server issued") from None
    return Page(size, after)


def next_token(items: list[Any], page: Page, key: Any) -> str:
    """A token for the next page, or "" when this page is the last one."""
    if len(items) < page.size or not items:
        return ""
    return base64.urlsafe_b64encode(json.dumps({"after": key(items[-1])}).encode()).decode("ascii")
