# store/_copytext.c: the rows of a bulk COPY in PostgreSQL's text format, written in C (see there)
from typing import Any

def copy_text(rows: list[tuple[Any, ...]]) -> bytes | None: ...
