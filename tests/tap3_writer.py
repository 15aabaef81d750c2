"""Write small TAP 3.12 TransferBatch and RAP ReturnBatch files for tests and benchmarks (not part of the product).

Only what the tests need: MO/MT calls, GPRS calls and supplementary service events
with one charge each, severe returns of such events, plus the BER encoding they are made of.  :func:`transfer_batch`
computes the audit totals from the events unless told otherwise, so tests can build
consistent files and then break exactly one thing.  ``bench/bench_tap3.py`` uses it
too (``from tests.tap3_writer import ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.tap3.ber import encode_tag


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def encode_integer(value: int) -> bytes:
    """Minimal two's complement content octets."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(size, "big", signed=True)


def tlv(number: int, content: bytes, constructed: bool = False, cls: int = 1, indefinite: bool = False) -> bytes:
    tag = encode_tag(number, constructed, cls)
    if indefinite:
        if not constructed:
            raise ValueError("indefinite length needs a constructed element")
        return tag + b"\x80" + content + b"\x00\x00"
    return tag + encode_length(len(content)) + content



def _p(number: int, content: bytes) -> bytes:
    return tlv(number, content)


def _c(number: int, *parts: bytes, indefinite: bool = False) -> bytes:
    return tlv(number, b"".join(parts), constructed=True, indefinite=indefinite)


def _int(number: int, value: int) -> bytes:
    return _p(number, encode_integer(value))


def _text(number: int, value: str) -> bytes:
    return _p(number, value.encode("ascii"))


def _bcd(number: int, value: str) -> bytes:
    text = value + ("f" if len(value) % 2 else "")
    return _p(number, bytes.fromhex(text))


def date_time_long(number: int, local: str, offset: str) -> bytes:
    return _c(number, _text(16, local), _text(231, offset))


def date_time(number: int, local: str, code: int) -> bytes:
    return _c(number, _text(16, local), _int(232, code))


def _subscriber(imsi: str, msisdn: str) -> bytes:
    inner = _bcd(129, imsi) + (_bcd(152, msisdn) if msisdn else b"")
    return _c(427, _c(199, inner))


def charge_information(item: str, charge: int, tax: int | None = None, discount: int | None = None) -> bytes:
    parts = [_text(66, item), _int(105, 1), _c(64, _c(63, _text(71, "00"), _int(62, charge)))]
    if tax is not None:
        parts.append(_c(214, _c(213, _int(212, 1), _int(397, tax))))
    if discount is not None:
        parts.append(_c(96, _int(91, 1), _int(412, discount)))
    return _c(69, *parts)


@dataclass(frozen=True)
class Event:
    """A call event as written, with what it contributes to the audit."""

    ber: bytes
    charge: int
    start: str                 # local time stamp (utc offset code 1)
    tax: int = 0
    discount: int = 0


def mo_call(imsi: str, msisdn: str, called: str, start: str, duration: int, charge: int, *,
            tele_service: str = "11", tax: int | None = None, discount: int | None = None,
            indefinite: bool = False) -> Event:
    basic = _c(147, _subscriber(imsi, msisdn), _c(89, _bcd(407, called)), date_time(44, start, 1), _int(223, duration))
    location = _c(138, _c(156, _int(184, 1), _int(136, 3505), _int(59, 7182)))
    service = _c(38, _c(39, _c(36, _c(426, _text(218, tele_service))),
                        _c(70, charge_information("D", charge, tax, discount))))
    return Event(_c(9, basic, location, service, indefinite=indefinite), charge, start, tax or 0, discount or 0)


def mt_call(imsi: str, msisdn: str, calling: str, start: str, duration: int, charge: int) -> Event:
    basic = _c(153, _subscriber(imsi, msisdn), _c(41, _bcd(405, calling)), date_time(44, start, 1), _int(223, duration))
    location = _c(138, _c(156, _int(184, 1)))
    service = _c(38, _c(39, _c(36, _c(426, _text(218, "11"))), _c(70, charge_information("D", charge))))
    return Event(_c(10, basic, location, service), charge, start)


def gprs_call(imsi: str, msisdn: str, apn: str, start: str, duration: int, volume_in: int, volume_out: int,
              charge: int, charging_id: int = 1) -> Event:
    basic = _c(114, _c(115, _subscriber(imsi, msisdn)), _c(116, _text(261, apn)), date_time(44, start, 1),
               _int(223, duration), _int(72, charging_id))
    location = _c(117, _c(118, _c(185, _int(184, 1))))
    used = _c(121, _int(250, volume_in), _int(251, volume_out), _c(70, charge_information("X", charge)))
    return Event(_c(14, basic, location, used), charge, start)


def suppl_service_event(imsi: str, start: str, code: str = "2B", action: int = 0) -> Event:
    used = _c(206, _text(209, code), _int(208, action), date_time(74, start, 1))
    return Event(_c(11, _subscriber(imsi, ""), _c(138, _c(156, _int(184, 1))), used), 0, start)


def transfer_batch(events: list[Event], *, sender: str = "DEUXX", recipient: str = "GBRYY", sequence: str = "00001",
                   utc_offset: str = "+0100", decimal_places: int = 3, tap_currency: str = "",
                   local_currency: str = "EUR", total_charge: int | None = None, count: int | None = None,
                   earliest: str | None = None, latest: str | None = None, release: int = 12,
                   indefinite: bool = False) -> bytes:
    """A complete TransferBatch; audit values default to what the events add up to."""
    stamp = "20240102030405"
    control = _c(4, _text(196, sender), _text(182, recipient), _text(109, sequence),
                 date_time_long(108, stamp, utc_offset), date_time_long(227, stamp, utc_offset),
                 date_time_long(107, stamp, utc_offset), _int(201, 3), _int(189, release))
    accounting_parts = [_text(135, local_currency)]
    if tap_currency:
        accounting_parts.append(_text(210, tap_currency))
    accounting_parts += [_c(80, _c(106, _int(105, 1), _int(159, 5), _int(104, 116203))), _int(244, decimal_places)]
    accounting = _c(5, *accounting_parts)
    network = _c(6, _c(234, _c(233, _int(232, 1), _text(231, utc_offset))),
                 _c(188, _c(183, _int(184, 1), _int(186, 1), _text(400, "MSC01"))))
    starts = sorted(e.start for e in events)   # one UTC offset code: local order is UTC order
    audit_parts = []
    if events:
        audit_parts += [date_time_long(101, earliest or starts[0], utc_offset),
                        date_time_long(133, latest or starts[-1], utc_offset)]
    audit_parts += [
        _int(415, sum(e.charge for e in events) if total_charge is None else total_charge),
        _int(226, sum(e.tax for e in events)),
        _int(225, sum(e.discount for e in events)),
        _int(43, len(events) if count is None else count),
    ]
    body = [control, accounting, network, _c(3, *(e.ber for e in events), indefinite=indefinite), _c(15, *audit_parts)]
    return _c(1, *body, indefinite=indefinite)


def severe_return(event: Event, *, file_sequence: str = "00001", utc_offset: str | None = "+0100",
                  extra: bytes = b"") -> bytes:
    """A RAP SevereReturn [APPLICATION 524] returning ``event`` of TAP file ``file_sequence``, with the UTC offset
    its code 1 means (None: none carried).  ``extra``: other items (an error detail, as the reader skips it)."""
    parts = [_text(109, file_sequence), event.ber]
    if utc_offset is not None:
        parts.append(_c(234, _c(233, _int(232, 1), _text(231, utc_offset))))
    return _c(524, *parts, extra)


def return_batch(returns: list[bytes], *, sender: str = "GBRYY", recipient: str = "DEUXX", sequence: str = "00007",
                 tap_currency: str = "", decimal_places: int | None = 3) -> bytes:
    """A RAP ReturnBatch: the home network ``sender`` returns to the visited network ``recipient`` the records of
    its TAP files; ``returns`` are ReturnDetails (e.g. :func:`severe_return`)."""
    stamp = "20240110030405"
    control = [_text(196, sender), _text(182, recipient), _text(181, sequence), date_time_long(526, stamp, "+0000"),
               date_time_long(525, stamp, "+0000"), _int(201, 3), _int(189, 12), _int(544, 1), _int(543, 5)]
    if tap_currency:
        control.append(_text(210, tap_currency))
    if decimal_places is not None:
        control.append(_int(244, decimal_places))
    return _c(534, _c(537, *control), _c(536, *returns), _c(541))
