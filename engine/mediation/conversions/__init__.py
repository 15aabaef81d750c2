"""Conversions from one raw CSV value to one normalised CDR value.

One model per kind behind :class:`Conversion`, dispatched from :data:`CONVERSIONS`.
A field rule in a layout names its kind (``convert: timestamp``) and the kind's
options sit beside it::

    start_time: {column: start, convert: timestamp, format: "%Y-%m-%d %H:%M:%S", zone: Europe/London}

``compile()`` returns a plain ``str -> value`` callable for the hot path; it
raises :class:`ConversionError` with a stable code on bad input.  Timestamps come
out as ISO 8601 UTC text (``2026-11-27T10:00:00Z``), the normalised file form.
"""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert
from engine.mediation.conversions.classify import Classify
from engine.mediation.conversions.duration import Duration
from engine.mediation.conversions.epoch import Epoch
from engine.mediation.conversions.imsi import Imsi
from engine.mediation.conversions.integer import Integer
from engine.mediation.conversions.number import Number
from engine.mediation.conversions.text import Text
from engine.mediation.conversions.timestamp import Timestamp
from engine.mediation.conversions.value_map import ValueMap
from engine.mediation.conversions.volume import Volume

# the one table a layout's `convert:` is looked up in
CONVERSIONS: dict[str, type[Conversion]] = {
    c.kind: c for c in (Text, Integer, Duration, Volume, Timestamp, Epoch, Number, Imsi, ValueMap, Classify)
}

__all__ = ["CONVERSIONS", "Classify", "CompileContext", "Conversion", "Convert", "Duration", "Epoch", "Imsi", "Integer",
           "Number", "Text", "Timestamp", "ValueMap", "Volume"]
