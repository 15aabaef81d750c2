"""Group commit of a rating stream: the messages of a stream that are already received when one is rated, with the
same options, rated and stored as one chunk (RatingStream.grouped; RateCdrs, servers.rating_service, hands it its
requests and writes each message's reply from what comes back).

A group is the message read next and those behind it that are already received (never waited for) with the same
tariff plan and counter option, up to ``bound`` CDRs and ``group_bytes`` bytes of messages (a message is never split:
one larger than that is a group of its own), none of whose CDRs is in another message of the group: one chunk, rated
and stored as one transaction (so more rows land on each page a commit writes), each message answered from its own
rows.  The chunk is handed the start of each message in it (``starts``): a CDR stored before and sent again gives
back what it held where its own message starts, so a stream's result does not depend on how it was grouped.  Each
group is rated while the group before it is stored, and the answers of that one come out once it is committed, in
order, and before the next message is waited for when none is there yet.  A message that is refused (its ``read``
raises: a bad CDR, another tenant's CDRs, an error of the reading) closes the group before it: that group is stored
and answered first, then the error is raised."""

from __future__ import annotations

import logging
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from engine.cdr import COLUMNS
from engine.gcpause import collector_paused
from engine.readahead import END, NOT_YET, ReadAhead


log = logging.getLogger("rulebill.rating.groups")


class RatedSlice(Protocol):
    """What a group's chunk gives once stored (engine.rating.desk.RatedRows): a message's slice of it."""

    def part(self, start: int, end: int) -> "RatedSlice": ...


class GroupRater(Protocol):
    """The stream the groups are rated on (engine.rating.desk.RatingStream; named here, not imported: the desk imports
    this module)."""

    overlapped: int

    def rate_rows(self, rows: Any, tariff_plan: str = "", use_counters: bool = False,
                  starts: Sequence[int] = ()) -> Callable[[], RatedSlice]: ...

    def close(self) -> None: ...


class Message(Protocol):
    """A message of a stream as ``read`` gives it: its rows as read (``rows``), the same with the caller's tenant and
    checked (``own``: engine.rating.desk.RatingStream.own), and its options."""

    rows: list[tuple[Any, ...]]
    own: list[tuple[Any, ...]]
    tariff_plan: str
    use_counters: bool


def grouped(stream: "GroupRater", items: Iterable[Any], read: Callable[[Any], Any], weigh: Callable[[Any], int],
            bound: int, size: Callable[[Any], int] | None = None, size_limit: int = 0,
            group_bytes: int = 0) -> Iterator[tuple[Any, "RatedSlice"]]:
    """``(message, its rated rows)`` of each of ``items`` in order (``read``: an item as a Message, raising when it is
    refused; ``weigh``: an item's CDRs, what the read-ahead is bounded by; ``size``: its bytes, the read-ahead's second
    bound ``size_limit``, and a group's, at most ``group_bytes`` when it is set); see the module's description."""
    # read ahead: up to two groups' CDRs (the one being rated and the next), so that a writer slower than the client
    # finds a group's messages waiting when it is done, and no more than size_limit bytes of messages (CDRs with large
    # attributes would otherwise hold gigabytes for one stream)
    ahead = ReadAhead(items, "rating-requests", 2 * bound, weigh, size=size, size_limit=size_limit)
    waiting: _Group | None = None   # the group rated before, its answers not given yet
    groups = messages = 0
    pending: Any = NOT_YET          # read and not in a group yet: a _Read, END, or a _Refused to raise in its turn
    try:
        while True:
            try:
                item = pending if pending is not NOT_YET else ahead.ready()
                pending = NOT_YET
                if item is NOT_YET:
                    if waiting is not None:   # no message waits: these answers go out first (a client may wait for them)
                        done, waiting = waiting, None
                        yield from _answers(done)
                    item = ahead.next()
                if item is END:
                    break
                group = _Group(_message(read, item), item.size if type(item) is _Read else ahead.last_size)
                while group.count < bound:   # the messages received already join it, while they can
                    try:
                        item = ahead.ready()
                        if item is NOT_YET:
                            break
                        if item is END:
                            pending = END
                            break
                        message = _message(read, item)
                    except Exception as e:   # its refusal comes after the answers of the messages before it
                        pending = _Refused(e)
                        break
                    if not group.join(message, bound, ahead.last_size, group_bytes):
                        pending = _Read(message, ahead.last_size)
                        break
                with collector_paused():   # thousands of rows of tuples, nothing cyclic (see engine.gcpause)
                    group.stored = stream.rate_rows(group.rows, group.tariff_plan, group.use_counters, group.starts)
                groups, messages = groups + 1, messages + len(group.messages)
            except BaseException:
                if waiting is not None:
                    done, waiting = waiting, None
                    yield from _answers(done)
                raise
            if waiting is not None:
                yield from _answers(waiting)
            waiting = group
        if waiting is not None:
            done, waiting = waiting, None
            yield from _answers(done)
    finally:
        ahead.stop()
        stream.close()
        log.debug("RateCdrs: %d messages rated in %d groups, %d of them while the one before was stored", messages, groups,
                  stream.overlapped)


class _Read:
    """A message read that closed the group before it: the first of the next group (``size``: its bytes)."""

    __slots__ = ("message", "size")

    def __init__(self, message: Any, size: int) -> None:
        self.message, self.size = message, size


class _Refused:
    """The error a message read ahead gave, raised once the group before it is answered."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _message(read: Callable[[Any], Any], item: Any) -> Any:
    """An item as a Message: one read already (``_Read``), a refusal to raise (``_Refused``), or read now."""
    kind = type(item)
    if kind is _Read:
        return item.message
    if kind is _Refused:
        raise item.error
    return read(item)


class _Group:
    """Messages of a stream rated and stored as one chunk: their rows one after the other (``rows``), ``stored`` the
    stream's function that waits for the commit and gives the chunk's rated rows."""

    __slots__ = ("messages", "rows", "count", "size", "starts", "tariff_plan", "use_counters", "ids", "stored")

    def __init__(self, first: Message, size: int = 0) -> None:
        self.messages = [first]
        self.rows: list[tuple[Any, ...]] = first.own
        self.count = len(first.own)
        self.size = size                  # the bytes its messages came in
        self.starts = [0]                 # where each message's rows start in ``rows``
        self.tariff_plan, self.use_counters = first.tariff_plan, first.use_counters
        self.ids: set[tuple[str, str]] | None = None   # (tenant, CDR id) of the rows, once a second message asks to join
        self.stored: Any = None

    def join(self, message: Message, bound: int, size: int = 0, group_bytes: int = 0) -> bool:
        """Whether ``message`` (of ``size`` bytes) joins the group (then its rows follow): the same options, within
        ``bound`` CDRs and ``group_bytes`` bytes (when set), and none of its CDRs in the group already (a CDR sent again
        is rated again after the group is stored, as it is when the messages come one at a time)."""
        if (message.tariff_plan != self.tariff_plan or message.use_counters != self.use_counters
                or self.count + len(message.own) > bound or (group_bytes > 0 and self.size + size > group_bytes)):
            return False
        if self.ids is None:
            self.ids = _ids(self.rows)
        ids = _ids(message.own)
        if len(self.ids) < self.count or len(ids) < len(message.own) or not self.ids.isdisjoint(ids):
            return False
        self.ids |= ids
        if len(self.messages) == 1:
            self.rows = list(self.rows)
        self.starts.append(self.count)
        self.rows.extend(message.own)
        self.messages.append(message)
        self.count += len(message.own)
        self.size += size
        return True


_ID_KEY = itemgetter(COLUMNS.index("tenant"), COLUMNS.index("cdr_id"))


def _ids(rows: list[tuple[Any, ...]]) -> set[tuple[str, str]]:
    return set(map(_ID_KEY, rows))


def _answers(group: _Group) -> Iterator[tuple[Any, "RatedSlice"]]:
    """Each message with its share of the group's rated rows, in order, once the group is committed."""
    with collector_paused():
        rated = group.stored()
    start = 0
    for m in group.messages:
        end = start + len(m.rows)
        yield m, rated.part(start, end)
        start = end
