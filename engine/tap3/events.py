"""Decoders of the TAP 3.12 call event types, one method per CallEventDetail alternative.

:data:`EVENT_DECODERS` is the dispatch table from the event's tag to its decoder.
Each decoder fills a :class:`CallEvent` and notes missing mandatory items
(``*m.m.`` in TD.57) as record problems instead of raising: one bad record must
not cost the whole file.  Unknown elements are skipped, as the extension markers
of the TD.57 module allow.
"""

from __future__ import annotations

from typing import Callable

from . import fields as F
from . import tags as T
from .ber import MAX_INTEGER_OCTETS, ascii_text, bcd, children, encode_tag, integer, sole
from .fields import FieldTable
from .model import (
    CallEvent,
    ChargeDetail,
    ChargeInformation,
    DateTime,
    EventKind,
    ServiceUsed,
    TaxInformation,
)


# identifier octets of groups that usually hold a single item (see ber.sole)
_SIM_SUBSCRIBER = encode_tag(199, True)
_NETWORK_LOCATION = encode_tag(156, True)
_BASIC_SERVICE_CODE = encode_tag(426, True)
_TELE_SERVICE_CODE = encode_tag(218, False)
_CHARGE_INFORMATION = encode_tag(69, True)
_CHARGEABLE_SUBSCRIBER = encode_tag(427, True)
_GPRS_NETWORK_LOCATION = encode_tag(118, True)
_CHARGE_DETAIL = encode_tag(63, True)
_BASIC_SERVICE_USED = encode_tag(39, True)


# the groups made of simple items, one table each (engine.tap3.fields); the fast paths above them
# take the canonical layouts without building a dict
_IMSI_MSISDN_ITEMS: FieldTable = {T.IMSI: ("imsi", F.bcd_digits, "imsi"), T.MSISDN: ("msisdn", F.bcd_digits, "msisdn")}
_MIN_MDN_ITEMS: FieldTable = {T.MIN: ("imsi", F.number_text, "min"), T.MDN: ("msisdn", F.number_text, "mdn")}
_TAX_INFORMATION_ITEMS: FieldTable = {
    T.TAX_CODE: ("code", F.number, "taxCode"),
    T.TAX_VALUE: ("value", F.number, "taxValue"),
    T.TAXABLE_AMOUNT: ("amount", F.number, "taxableAmount"),
}
_DISCOUNT_INFORMATION_ITEMS: FieldTable = {T.DISCOUNT_CODE: ("code", F.number, "discountCode"), T.DISCOUNT: ("value", F.number, "discount")}
_CHARGE_DETAIL_ITEMS: FieldTable = {
    T.CHARGE_TYPE: ("type", F.number_text, "chargeType"),
    T.CHARGE: ("charge", F.number, "charge"),
    T.CHARGEABLE_UNITS: ("units", F.number, "chargeableUnits"),
    T.CHARGED_UNITS: ("charged", F.number, "chargedUnits"),
}
_CAMEL_ITEMS: FieldTable = {
    T.CAMEL_INVOCATION_FEE: ("fee", F.number, "camelInvocationFee"),
    T.TAX_INFORMATION_LIST: ("taxes", F.groups(T.TAX_INFORMATION, _TAX_INFORMATION_ITEMS, "taxInformation"), "taxInformation"),
    T.DISCOUNT_INFORMATION: ("discount", F.group(_DISCOUNT_INFORMATION_ITEMS), "discountInformation"),
}
_NETWORK_LOCATION_ITEMS: FieldTable = {T.REC_ENTITY_CODE: ("code", F.number, "recEntityCode")}
_DESTINATION_ITEMS: FieldTable = {
    T.CALLED_NUMBER: ("called", F.bcd_digits, "calledNumber"),
    T.DIALLED_DIGITS: ("dialled", F.text, "dialledDigits"),
    T.SMS_DESTINATION_NUMBER: ("sms", F.text, "smsDestinationNumber"),
}
_CALL_ORIGINATOR_ITEMS: FieldTable = {
    T.CALLING_NUMBER: ("calling", F.bcd_digits, "callingNumber"),
    T.SMS_ORIGINATOR: ("sms", F.text, "smsOriginator"),
}


def _taxes(items: object) -> tuple[TaxInformation, ...]:
    return tuple(TaxInformation(t["code"], t["value"], t["amount"]) for t in items)  # type: ignore[attr-defined]


def _missing(event: CallEvent, field: str, offset: int) -> None:
    event.problems.append(("missing-field", field, f"mandatory {field} is missing", offset))


class EventDecoder:
    """Holds the file's bytes; its methods decode one structure each."""

    __slots__ = ("buf",)

    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    # ------------------------------------------------------------ shared groups

    def datetime(self, vs: int, ve: int) -> DateTime:
        buf = self.buf
        # fast path for the canonical layout: LocalTimeStamp (14 digits) then UtcTimeOffsetCode
        if (ve - vs > 20 and buf[vs] == 0x50 and buf[vs + 1] == 14 and buf[vs + 16] == 0x5F
                and buf[vs + 17] == 0x81 and buf[vs + 18] == 0x68 and 0 < buf[vs + 19] <= MAX_INTEGER_OCTETS
                and vs + 20 + buf[vs + 19] == ve):
            local = buf[vs + 2:vs + 16].decode("latin-1")
            if local.isascii() and local.isdigit():
                return DateTime(local, int.from_bytes(buf[vs + 20:ve], "big", signed=True))
        return F.date_time(buf, vs, ve, "dateTime")

    def subscriber(self, vs: int, ve: int, event: CallEvent) -> None:
        """ChargeableSubscriber / ScuChargeableSubscriber CHOICE: SIM (IMSI, MSISDN) or MIN (MIN, MDN)."""
        buf = self.buf
        inner = sole(buf, vs, ve, _SIM_SUBSCRIBER)
        if inner >= 0:
            self.imsi_msisdn(inner, ve, event)
            return
        for key, _h, s, e in children(buf, vs, ve):
            if key == T.SIM_CHARGEABLE_SUBSCRIBER or key == T.GSM_CHARGEABLE_SUBSCRIBER:
                self.imsi_msisdn(s, e, event)
            elif key == T.MIN_CHARGEABLE_SUBSCRIBER:
                self._identities(F.read_group(buf, s, e, _MIN_MDN_ITEMS, "minChargeableSubscriber"), event)

    def imsi_msisdn(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        # fast path: Imsi [APPLICATION 129] alone or followed by Msisdn [APPLICATION 152]
        if ve - vs > 4 and buf.startswith(b"\x5f\x81\x01", vs) and buf[vs + 3] < 0x80:
            mid = vs + 4 + buf[vs + 3]
            if mid == ve:
                event.imsi = bcd(buf, vs + 4, mid)
                return
            if (ve - mid > 4 and buf.startswith(b"\x5f\x81\x18", mid) and buf[mid + 3] < 0x80
                    and mid + 4 + buf[mid + 3] == ve):
                event.imsi = bcd(buf, vs + 4, mid)
                event.msisdn = bcd(buf, mid + 4, ve)
                return
        self._identities(F.read_group(buf, vs, ve, _IMSI_MSISDN_ITEMS, "simChargeableSubscriber"), event)

    @staticmethod
    def _identities(values: dict[str, object], event: CallEvent) -> None:
        if values["imsi"]:
            event.imsi = values["imsi"]  # type: ignore[assignment]
        if values["msisdn"]:
            event.msisdn = values["msisdn"]  # type: ignore[assignment]

    def taxes(self, vs: int, ve: int) -> tuple[TaxInformation, ...]:
        return _taxes(F.read_groups(self.buf, vs, ve, T.TAX_INFORMATION, _TAX_INFORMATION_ITEMS, "taxInformation"))

    def discount(self, vs: int, ve: int) -> tuple[int | None, int | None]:
        v = F.read_group(self.buf, vs, ve, _DISCOUNT_INFORMATION_ITEMS, "discountInformation")
        return v["code"], v["value"]  # type: ignore[return-value]

    def charge_details(self, vs: int, ve: int, event: CallEvent, path: str) -> tuple[ChargeDetail, ...]:
        buf = self.buf
        out = []
        inner = sole(buf, vs, ve, _CHARGE_DETAIL)
        items = ((T.CHARGE_DETAIL, vs, inner, ve),) if inner >= 0 else children(buf, vs, ve)
        for key, hs, s, e in items:
            if key != T.CHARGE_DETAIL:
                continue
            # fast path for the common layout: ChargeType (2 digits) then Charge, nothing else
            if (e - s > 8 and buf[s] == 0x5F and buf[s + 1] == 0x47 and buf[s + 2] == 2 and buf[s + 5] == 0x5F
                    and buf[s + 6] == 0x3E and 0 < buf[s + 7] <= MAX_INTEGER_OCTETS and s + 8 + buf[s + 7] == e):
                ctype = buf[s + 3:s + 5].decode("latin-1")
                if ctype.isascii() and ctype.isdigit():
                    out.append(ChargeDetail(ctype, int.from_bytes(buf[s + 8:e], "big", signed=True)))
                    continue
            v = F.read_group(buf, s, e, _CHARGE_DETAIL_ITEMS, path)
            if not v["type"]:
                _missing(event, path + ".chargeType", hs)
            if v["charge"] is None:
                _missing(event, path + ".charge", hs)
            out.append(ChargeDetail(v["type"], v["charge"], v["units"], v["charged"]))  # type: ignore[arg-type]
        return tuple(out)

    def charge_information(self, vs: int, ve: int, event: CallEvent, hs: int, refund: bool = False) -> ChargeInformation:
        buf = self.buf
        item = ""
        rate_code = disc_code = disc = None
        details: tuple[ChargeDetail, ...] | None = None
        taxes: tuple[TaxInformation, ...] = ()
        for key, _h, s, e in children(buf, vs, ve):
            if key == T.CHARGED_ITEM:
                item = ascii_text(buf, s, e)
            elif key == T.EXCHANGE_RATE_CODE:
                rate_code = integer(buf, s, e)
            elif key == T.CHARGE_DETAIL_LIST:
                details = self.charge_details(s, e, event, "chargeInformation.chargeDetail")
            elif key == T.TAX_INFORMATION_LIST:
                taxes = self.taxes(s, e)
            elif key == T.DISCOUNT_INFORMATION:
                disc_code, disc = self.discount(s, e)
        if not item:
            _missing(event, "chargeInformation.chargedItem", hs)
        if details is None:
            _missing(event, "chargeInformation.chargeDetailList", hs)
            details = ()
        return ChargeInformation(item, rate_code, details, taxes, disc_code, disc, refund)

    def charge_information_list(self, vs: int, ve: int, event: CallEvent, refund: bool = False) -> tuple[ChargeInformation, ...]:
        inner = sole(self.buf, vs, ve, _CHARGE_INFORMATION)
        if inner >= 0:
            return (self.charge_information(inner, ve, event, vs, refund),)
        return tuple(
            self.charge_information(s, e, event, hs, refund)
            for key, hs, s, e in children(self.buf, vs, ve)
            if key == T.CHARGE_INFORMATION
        )

    def camel(self, vs: int, ve: int, event: CallEvent) -> None:
        v = F.read_group(self.buf, vs, ve, _CAMEL_ITEMS, "camelServiceUsed")
        event.camel_invocation_fee = v["fee"]  # type: ignore[assignment]
        event.camel_taxes = _taxes(v["taxes"])
        if v["discount"] is not None:
            event.camel_discount = v["discount"]["value"]  # type: ignore[index]

    def location(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        inner = sole(buf, vs, ve, _NETWORK_LOCATION)
        if inner >= 0:
            self.network_location(inner, ve, event)
            return
        for key, _h, s, e in children(buf, vs, ve):
            if key == T.NETWORK_LOCATION:
                self.network_location(s, e, event)

    def network_location(self, vs: int, ve: int, event: CallEvent) -> None:
        code = F.read_group(self.buf, vs, ve, _NETWORK_LOCATION_ITEMS, "networkLocation")["code"]
        if code is not None:
            event.rec_entity_codes = (code,)  # type: ignore[assignment]

    def rec_entity_list(self, vs: int, ve: int) -> tuple[int, ...]:
        buf = self.buf
        return tuple(integer(buf, s, e) for key, _h, s, e in children(buf, vs, ve) if key == T.REC_ENTITY_CODE)

    def services_used(self, vs: int, ve: int, event: CallEvent) -> tuple[ServiceUsed, ...]:
        buf = self.buf
        out = []
        inner = sole(buf, vs, ve, _BASIC_SERVICE_USED)
        items = ((T.BASIC_SERVICE_USED, vs, inner, ve),) if inner >= 0 else children(buf, vs, ve)
        for key, hs, s, e in items:
            if key != T.BASIC_SERVICE_USED:
                continue
            tele = bearer = ""
            when = None
            charges: tuple[ChargeInformation, ...] = ()
            has_charges = False
            for k2, _h2, s2, e2 in children(buf, s, e):
                if k2 == T.BASIC_SERVICE:
                    code = sole(buf, s2, e2, _BASIC_SERVICE_CODE)
                    if code >= 0:
                        tele_at = sole(buf, code, e2, _TELE_SERVICE_CODE)
                        if tele_at >= 0:
                            tele = ascii_text(buf, tele_at, e2)
                            continue
                    for k3, _h3, s3, e3 in children(buf, s2, e2):
                        if k3 == T.BASIC_SERVICE_CODE:
                            for k4, _h4, s4, e4 in children(buf, s3, e3):
                                if k4 == T.TELE_SERVICE_CODE:
                                    tele = ascii_text(buf, s4, e4)
                                elif k4 == T.BEARER_SERVICE_CODE:
                                    bearer = ascii_text(buf, s4, e4)
                elif k2 == T.CHARGING_TIME_STAMP:
                    when = self.datetime(s2, e2)
                elif k2 == T.CHARGE_INFORMATION_LIST:
                    charges = self.charge_information_list(s2, e2, event)
                    has_charges = True
            if not tele and not bearer:
                _missing(event, "basicServiceUsed.basicService", hs)
            if not has_charges:
                _missing(event, "basicServiceUsed.chargeInformationList", hs)
            out.append(ServiceUsed(tele, bearer, when, charges))
        return tuple(out)

    def basic_call(self, vs: int, ve: int, event: CallEvent, hs: int) -> None:
        """MoBasicCallInformation / MtBasicCallInformation."""
        buf = self.buf
        has_subscriber = False
        for key, _h, s, e in children(buf, vs, ve):
            if key == T.CHARGEABLE_SUBSCRIBER:
                self.subscriber(s, e, event)
                has_subscriber = True
            elif key == T.CALL_EVENT_START_TIME_STAMP:
                event.start = self.datetime(s, e)
            elif key == T.TOTAL_CALL_EVENT_DURATION:
                event.duration = integer(buf, s, e)
            elif key == T.DESTINATION:
                d = F.read_group(buf, s, e, _DESTINATION_ITEMS, "destination")
                event.called_number = d["called"]  # type: ignore[assignment]
                event.dialled_digits = d["dialled"] or (d["sms"] if not d["called"] else "")  # type: ignore[assignment]
            elif key == T.DESTINATION_NETWORK:
                event.destination_network = ascii_text(buf, s, e)
            elif key == T.CALL_ORIGINATOR:
                o = F.read_group(buf, s, e, _CALL_ORIGINATOR_ITEMS, "callOriginator")
                event.calling_number = o["calling"] or o["sms"]  # type: ignore[assignment]
            elif key == T.ORIGINATING_NETWORK:
                event.originating_network = ascii_text(buf, s, e)
        if not has_subscriber:
            _missing(event, "basicCallInformation.chargeableSubscriber", hs)
        if event.start is None:
            _missing(event, "basicCallInformation.callEventStartTimeStamp", hs)
        if event.duration is None:
            _missing(event, "basicCallInformation.totalCallEventDuration", hs)

    # ------------------------------------------------------------ call events

    def mobile_call(self, vs: int, ve: int, event: CallEvent) -> None:
        """MobileOriginatedCall [APPLICATION 9] and MobileTerminatedCall [APPLICATION 10]."""
        buf = self.buf
        seen_basic = seen_location = seen_services = False
        for key, hs, s, e in children(buf, vs, ve):
            if key == T.MO_BASIC_CALL_INFORMATION or key == T.MT_BASIC_CALL_INFORMATION:
                self.basic_call(s, e, event, hs)
                seen_basic = True
            elif key == T.LOCATION_INFORMATION:
                self.location(s, e, event)
                seen_location = True
            elif key == T.BASIC_SERVICE_USED_LIST:
                event.services = self.services_used(s, e, event)
                seen_services = True
            elif key == T.SUPPL_SERVICE_CODE:
                event.suppl_service_code = ascii_text(buf, s, e)
            elif key == T.CAMEL_SERVICE_USED:
                self.camel(s, e, event)
        if not seen_basic:
            _missing(event, "basicCallInformation", event.offset)
        if not seen_location:
            _missing(event, "locationInformation", event.offset)
        if not seen_services:
            _missing(event, "basicServiceUsedList", event.offset)

    def suppl_service_event(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        seen_subscriber = seen_location = seen_used = False
        for key, hs, s, e in children(buf, vs, ve):
            if key == T.CHARGEABLE_SUBSCRIBER:
                self.subscriber(s, e, event)
                seen_subscriber = True
            elif key == T.LOCATION_INFORMATION:
                self.location(s, e, event)
                seen_location = True
            elif key == T.SUPPL_SERVICE_USED:
                seen_used = True
                for k2, h2, s2, e2 in children(buf, s, e):
                    if k2 == T.SUPPL_SERVICE_CODE:
                        event.suppl_service_code = ascii_text(buf, s2, e2)
                    elif k2 == T.SUPPL_SERVICE_ACTION_CODE:
                        event.suppl_service_action = integer(buf, s2, e2)
                    elif k2 == T.CHARGING_TIME_STAMP:
                        event.start = self.datetime(s2, e2)
                    elif k2 == T.CHARGE_INFORMATION:
                        event.charges = (self.charge_information(s2, e2, event, h2),)
                if not event.suppl_service_code:
                    _missing(event, "supplServiceUsed.supplServiceCode", hs)
                if event.suppl_service_action is None:
                    _missing(event, "supplServiceUsed.supplServiceActionCode", hs)
        if not seen_subscriber:
            _missing(event, "chargeableSubscriber", event.offset)
        if not seen_location:
            _missing(event, "locationInformation", event.offset)
        if not seen_used:
            _missing(event, "supplServiceUsed", event.offset)

    def service_centre_usage(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        seen = set()
        for key, hs, s, e in children(buf, vs, ve):
            seen.add(key)
            if key == T.SCU_BASIC_INFORMATION:
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.SCU_CHARGEABLE_SUBSCRIBER:
                        self.subscriber(s2, e2, event)
                    elif k2 == T.NON_CHARGED_NUMBER:
                        event.called_number = ascii_text(buf, s2, e2)
                    elif k2 == T.DESTINATION_NETWORK:
                        event.destination_network = ascii_text(buf, s2, e2)
                    elif k2 == T.ORIGINATING_NETWORK:
                        event.originating_network = ascii_text(buf, s2, e2)
            elif key == T.REC_ENTITY_CODE:
                event.rec_entity_codes = (integer(buf, s, e),)
            elif key == T.CHARGE_INFORMATION:
                event.charges = (self.charge_information(s, e, event, hs),)
            elif key == T.SCU_TIME_STAMPS:
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.DEPOSIT_TIME_STAMP:
                        event.start = self.datetime(s2, e2)
        for key, name in ((T.SCU_BASIC_INFORMATION, "basicInformation"), (T.REC_ENTITY_CODE, "recEntityCode"),
                          (T.CHARGE_INFORMATION, "chargeInformation"), (T.SCU_CHARGE_TYPE, "scuChargeType"),
                          (T.SCU_TIME_STAMPS, "scuTimeStamps")):
            if key not in seen:
                _missing(event, name, event.offset)

    def gprs_call(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        seen_basic = seen_location = seen_used = False
        for key, hs, s, e in children(buf, vs, ve):
            if key == T.GPRS_BASIC_CALL_INFORMATION:
                seen_basic = True
                has_subscriber = has_destination = False
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.GPRS_CHARGEABLE_SUBSCRIBER:
                        inner = sole(buf, s2, e2, _CHARGEABLE_SUBSCRIBER)
                        if inner >= 0:
                            self.subscriber(inner, e2, event)
                            has_subscriber = True
                            continue
                        for k3, _h3, s3, e3 in children(buf, s2, e2):
                            if k3 == T.CHARGEABLE_SUBSCRIBER:
                                self.subscriber(s3, e3, event)
                                has_subscriber = True
                    elif k2 == T.GPRS_DESTINATION:
                        has_destination = True
                        for k3, _h3, s3, e3 in children(buf, s2, e2):
                            if k3 == T.ACCESS_POINT_NAME_NI:
                                event.access_point_name_ni = ascii_text(buf, s3, e3)
                            elif k3 == T.ACCESS_POINT_NAME_OI:
                                event.access_point_name_oi = ascii_text(buf, s3, e3)
                    elif k2 == T.CALL_EVENT_START_TIME_STAMP:
                        event.start = self.datetime(s2, e2)
                    elif k2 == T.TOTAL_CALL_EVENT_DURATION:
                        event.duration = integer(buf, s2, e2)
                    elif k2 == T.CHARGING_ID:
                        event.charging_id = integer(buf, s2, e2)
                    elif k2 == T.PARTIAL_TYPE_INDICATOR:
                        event.partial_type = ascii_text(buf, s2, e2)
                if not has_subscriber:
                    _missing(event, "gprsBasicCallInformation.gprsChargeableSubscriber", hs)
                if not has_destination:
                    _missing(event, "gprsBasicCallInformation.gprsDestination", hs)
                if event.start is None:
                    _missing(event, "gprsBasicCallInformation.callEventStartTimeStamp", hs)
                if event.duration is None:
                    _missing(event, "gprsBasicCallInformation.totalCallEventDuration", hs)
                if event.charging_id is None:
                    _missing(event, "gprsBasicCallInformation.chargingId", hs)
            elif key == T.GPRS_LOCATION_INFORMATION:
                seen_location = True
                inner = sole(buf, s, e, _GPRS_NETWORK_LOCATION)
                for k2, _h2, s2, e2 in ((T.GPRS_NETWORK_LOCATION, s, inner, e),) if inner >= 0 else children(buf, s, e):
                    if k2 == T.GPRS_NETWORK_LOCATION:
                        for k3, _h3, s3, e3 in children(buf, s2, e2):
                            if k3 == T.REC_ENTITY_CODE_LIST:
                                event.rec_entity_codes = self.rec_entity_list(s3, e3)
            elif key == T.GPRS_SERVICE_USED:
                seen_used = True
                has_charges = False
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.DATA_VOLUME_INCOMING:
                        event.volume_incoming = integer(buf, s2, e2)
                    elif k2 == T.DATA_VOLUME_OUTGOING:
                        event.volume_outgoing = integer(buf, s2, e2)
                    elif k2 == T.CHARGE_INFORMATION_LIST:
                        event.charges = self.charge_information_list(s2, e2, event)
                        has_charges = True
                if event.volume_incoming is None:
                    _missing(event, "gprsServiceUsed.dataVolumeIncoming", hs)
                if event.volume_outgoing is None:
                    _missing(event, "gprsServiceUsed.dataVolumeOutgoing", hs)
                if not has_charges:
                    _missing(event, "gprsServiceUsed.chargeInformationList", hs)
            elif key == T.CAMEL_SERVICE_USED:
                self.camel(s, e, event)
        if not seen_basic:
            _missing(event, "gprsBasicCallInformation", event.offset)
        if not seen_location:
            _missing(event, "gprsLocationInformation", event.offset)
        if not seen_used:
            _missing(event, "gprsServiceUsed", event.offset)

    def content_transaction(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        seen = set()
        charges: list[ChargeInformation] = []
        for key, hs, s, e in children(buf, vs, ve):
            seen.add(key)
            if key == T.CONTENT_TRANSACTION_BASIC_INFO:
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.ACTUAL_DELIVERY_TIME_STAMP or (k2 == T.ORDER_PLACED_TIME_STAMP and event.start is None):
                        event.start = self.datetime(s2, e2)
                    elif k2 == T.TOTAL_TRANSACTION_DURATION:
                        event.duration = integer(buf, s2, e2)
            elif key == T.CHARGED_PARTY_INFORMATION:
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 != T.CHARGED_PARTY_ID_LIST:
                        continue
                    for _k3, _h3, s3, e3 in children(buf, s2, e2):
                        id_type, ident = None, ""
                        for k4, _h4, s4, e4 in children(buf, s3, e3):
                            if k4 == T.CHARGED_PARTY_ID_TYPE:
                                id_type = integer(buf, s4, e4)
                            elif k4 == T.CHARGED_PARTY_IDENTIFIER:
                                ident = ascii_text(buf, s4, e4)
                        # ChargedPartyIdType 1 = IMSI, 2 = MSISDN (TD.57 code list)
                        if id_type == 1:
                            event.imsi = ident
                        elif id_type == 2:
                            event.msisdn = ident
            elif key == T.CONTENT_SERVICE_USED_LIST:
                incoming = outgoing = 0
                for k2, h2, s2, e2 in children(buf, s, e):
                    if k2 != T.CONTENT_SERVICE_USED:
                        continue
                    refund = False
                    lists = []
                    for k3, _h3, s3, e3 in children(buf, s2, e2):
                        if k3 == T.CHARGE_REFUND_INDICATOR:
                            refund = integer(buf, s3, e3) == 1
                        elif k3 == T.CHARGE_INFORMATION_LIST:
                            lists.append((s3, e3))
                        elif k3 == T.DATA_VOLUME_INCOMING:
                            incoming += integer(buf, s3, e3)
                        elif k3 == T.DATA_VOLUME_OUTGOING:
                            outgoing += integer(buf, s3, e3)
                    for s3, e3 in lists:
                        charges.extend(self.charge_information_list(s3, e3, event, refund))
                event.volume_incoming, event.volume_outgoing = incoming, outgoing
        event.charges = tuple(charges)
        for key, name in ((T.CONTENT_TRANSACTION_BASIC_INFO, "contentTransactionBasicInfo"),
                          (T.CHARGED_PARTY_INFORMATION, "chargedPartyInformation"),
                          (T.SERVING_PARTIES_INFORMATION, "servingPartiesInformation"),
                          (T.CONTENT_SERVICE_USED_LIST, "contentServiceUsed")):
            if key not in seen:
                _missing(event, name, event.offset)

    def location_service(self, vs: int, ve: int, event: CallEvent) -> None:
        buf = self.buf
        seen_code = seen_usage = False
        for key, _hs, s, e in children(buf, vs, ve):
            if key == T.REC_ENTITY_CODE:
                event.rec_entity_codes = (integer(buf, s, e),)
                seen_code = True
            elif key == T.LOCATION_SERVICE_USAGE:
                seen_usage = True
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.LCS_QOS_REQUESTED:
                        for k3, _h3, s3, e3 in children(buf, s2, e2):
                            if k3 == T.LCS_REQUEST_TIMESTAMP:
                                event.start = self.datetime(s3, e3)
                    elif k2 == T.CHARGING_TIME_STAMP and event.start is None:
                        event.start = self.datetime(s2, e2)
                    elif k2 == T.CHARGE_INFORMATION_LIST:
                        event.charges = self.charge_information_list(s2, e2, event)
        if not seen_code:
            _missing(event, "recEntityCode", event.offset)
        if not seen_usage:
            _missing(event, "locationServiceUsage", event.offset)

    def messaging_event(self, vs: int, ve: int, event: CallEvent) -> None:
        """MessagingEvent [APPLICATION 433] and MobileSession [APPLICATION 434] (IMS/VoLTE era)."""
        buf = self.buf
        seen = set()
        rate_code = charge = None
        taxes: tuple[TaxInformation, ...] = ()
        session_charges: list[ChargeInformation] = []
        for key, hs, s, e in children(buf, vs, ve):
            seen.add(key)
            if key == T.MESSAGING_EVENT_SERVICE or key == T.MOBILE_SESSION_SERVICE:
                event.service_code = integer(buf, s, e)
            elif key == T.CHARGED_PARTY:
                self.imsi_msisdn(s, e, event)
            elif key == T.EVENT_REFERENCE:
                event.event_reference = ascii_text(buf, s, e)
            elif key == T.REC_ENTITY_CODE_LIST:
                event.rec_entity_codes = self.rec_entity_list(s, e)
            elif key == T.SERVICE_START_TIMESTAMP:
                event.start = self.datetime(s, e)
            elif key == T.TOTAL_CALL_EVENT_DURATION:
                event.duration = integer(buf, s, e)
            elif key == T.NON_CHARGED_PARTY:
                for k2, _h2, s2, e2 in children(buf, s, e):
                    if k2 == T.NON_CHARGED_PARTY_NUMBER:
                        event.called_number = bcd(buf, s2, e2)
            elif key == T.EXCHANGE_RATE_CODE:
                rate_code = integer(buf, s, e)
            elif key == T.CHARGE:
                charge = integer(buf, s, e)
            elif key == T.TAX_INFORMATION_LIST:
                taxes = self.taxes(s, e)
            elif key == T.SESSION_CHARGE_INFO_LIST:
                # SessionChargeInformation has ChargeInformation's shape
                session_charges.extend(
                    self.charge_information(s2, e2, event, h2)
                    for k2, h2, s2, e2 in children(buf, s, e) if k2 == T.SESSION_CHARGE_INFORMATION
                )
        mandatory: tuple[tuple[int, str], ...]
        if event.kind is EventKind.MESSAGING_EVENT:
            if charge is not None:
                event.charges = (ChargeInformation("", rate_code, (ChargeDetail("00", charge),), taxes),)
            mandatory = ((T.MESSAGING_EVENT_SERVICE, "messagingEventService"), (T.CHARGE, "charge"),
                         (T.CALL_TYPE_GROUP, "callTypeGroup"))
        else:
            event.charges = tuple(session_charges)
            mandatory = ((T.MOBILE_SESSION_SERVICE, "mobileSessionService"),
                         (T.TOTAL_CALL_EVENT_DURATION, "totalCallEventDuration"),
                         (T.SESSION_CHARGE_INFO_LIST, "sessionChargeInfoList"))
        mandatory += ((T.CHARGED_PARTY, "chargedParty"), (T.EVENT_REFERENCE, "eventReference"),
                      (T.REC_ENTITY_CODE_LIST, "recEntityCodeList"), (T.SERVICE_START_TIMESTAMP, "serviceStartTimestamp"))
        for key, name in mandatory:
            if key not in seen:
                _missing(event, name, event.offset)


EventMethod = Callable[[EventDecoder, int, int, CallEvent], None]

# The one dispatch table: event tag -> (kind, decoder).
EVENT_DECODERS: dict[int, tuple[EventKind, EventMethod]] = {
    T.MOBILE_ORIGINATED_CALL: (EventKind.MOBILE_ORIGINATED_CALL, EventDecoder.mobile_call),
    T.MOBILE_TERMINATED_CALL: (EventKind.MOBILE_TERMINATED_CALL, EventDecoder.mobile_call),
    T.SUPPL_SERVICE_EVENT: (EventKind.SUPPL_SERVICE_EVENT, EventDecoder.suppl_service_event),
    T.SERVICE_CENTRE_USAGE: (EventKind.SERVICE_CENTRE_USAGE, EventDecoder.service_centre_usage),
    T.GPRS_CALL: (EventKind.GPRS_CALL, EventDecoder.gprs_call),
    T.CONTENT_TRANSACTION: (EventKind.CONTENT_TRANSACTION, EventDecoder.content_transaction),
    T.LOCATION_SERVICE: (EventKind.LOCATION_SERVICE, EventDecoder.location_service),
    T.MESSAGING_EVENT: (EventKind.MESSAGING_EVENT, EventDecoder.messaging_event),
    T.MOBILE_SESSION: (EventKind.MOBILE_SESSION, EventDecoder.messaging_event),
}
