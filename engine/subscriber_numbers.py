"""Checks for subscriber identities: MSISDN (E.164) and IMSI."""

from __future__ import annotations

import re

_MSISDN = re.compile(r"^[1-9][0-9]{7,14}$")
_IMSI = re.compile(r"^[0-9]{15}$")
_MSISDN_PREFIX = re.compile(r"^[0-9]{0,15}$")


def normalise_msisdn(text: str) -> str:
    """Accept ``+`` and common separators; return the E.164 digits (no '+')."""
    cleaned = text.strip().replace(" ", "").replace("-", "")
    return cleaned[1:] if cleaned.startswith("+") else cleaned


def msisdn_problem(msisdn: str) -> str | None:
    if not _MSISDN.match(msisdn):
        return "must be an E.164 number: 8 to 15 digits, country code first, no leading 0"
    return None


def msisdn_prefix_problem(prefix: str) -> str | None:
    """A prefix of MSISDNs to list by: digits, at most as many as an E.164 number has ("" lists every number)."""
    if not _MSISDN_PREFIX.match(prefix):
        return "digits only, at most 15 (an E.164 number's length)"
    return None


def imsi_problem(imsi: str) -> str | None:
    if not _IMSI.match(imsi):
        return "must be 15 digits (MCC + MNC + MSIN)"
    return None
