# servers/_wire.c: RatingService's wire side of a chunk in C (see there)
from typing import Any, Callable

def cdr_rows(data: bytes, bounds: tuple[int, int, int, int, int], services: dict[int, str], directions: dict[int, str],
             per_event: frozenset[int] | set[int],
             ids_of: Callable[[str, list[str]], list[str]] | None = ...) -> list[tuple[Any, ...] | None] | None: ...
def rated_reply(results: list[Any], rows: list[Any], versions: list[int], rated: str, rated_number: int) -> list[bytes | int]: ...
