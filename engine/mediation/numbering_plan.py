"""Number normalisation to E.164 (digits, no '+'): the numbering plan of where a switch is.

A switch writes numbers the way its users dial them: ``+44 7700 900123``,
``00447700900123``, ``07700900123``, an emergency code ``999`` or a PBX extension
``2001``.  How to read them depends on where the switch is, so the plan is declared
per *source* (``rules/mediation/sources.yaml``); a layout may give defaults for what
its switch software does everywhere (``non_numeric``).  Each ``numbering:`` section
holds any of::

    numbering:
      country_code: "44"
      international_prefixes: ["00"]    # '+' is always understood
      national_prefix: "0"
      unprefixed: international         # or national: "7700900123" lacks the trunk prefix
      short_codes: ["999", "112"]       # kept as dialled
      extension_max_length: 5           # shorter numbers are PBX extensions, kept as dialled
      non_numeric: keep                 # SIP user names ("alice"): keep or reject
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from typing import Any, Callable, Iterable, Sequence

from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem

try:
    from engine.mediation._csvblock import number_column as _c_column
except ImportError:  # pragma: no cover - a build without a C compiler
    _c_column = None

_SEPARATORS = str.maketrans("", "", " -().")


@dataclass(frozen=True)
class NumberingPlan:
    country_code: str = ""
    international_prefixes: tuple[str, ...] = ("00",)
    national_prefix: str = "0"
    unprefixed: str = "international"
    short_codes: frozenset[str] = field(default_factory=frozenset)
    extension_max_length: int = 0
    non_numeric: str = "reject"

    def missing_country_code(self) -> bool:
        """A national prefix, or national numbers written without one, need the country code."""
        return (bool(self.national_prefix) or self.unprefixed == "national") and not self.country_code

    def compile(self, cache_size: int = 1 << 18) -> Callable[[str], str]:
        """A fast ``str -> str`` normaliser; raises :class:`ConversionError` (``value.bad-number``).

        Subscribers call the same numbers again and again, so results are cached; the
        cache is simply emptied when it reaches ``cache_size`` entries (memory stays bounded).
        """
        cc = self.country_code
        intl = tuple(sorted(self.international_prefixes, key=len, reverse=True))
        national = self.national_prefix
        unprefixed_national = self.unprefixed == "national"
        short = self.short_codes
        ext_max = self.extension_max_length
        keep_names = self.non_numeric == "keep"
        separators = _SEPARATORS

        national_len = len(national)

        def rewrite(text: str) -> str:
            """Digits as dialled -> country code + national number (not yet checked)."""
            for prefix in intl:
                if text.startswith(prefix):
                    return text[len(prefix):]
            if national and text.startswith(national):
                return cc + text[national_len:]
            return cc + text if unprefixed_national else text

        def digits_only(text: str) -> str:
            # the common case, kept flat: a string of digits
            if len(text) <= ext_max or text in short:
                return text
            e164 = rewrite(text)
            if 7 <= len(e164) <= 15 and e164[0] != "0":  # E.164: at most 15 digits, no country code starts with 0
                return e164
            raise ConversionError("value.bad-number", f"{text[:40]!r} does not normalise to an E.164 number ({e164[:20]!r})")

        def compute(text: str) -> str:
            if text.isdigit() and text.isascii():   # isdigit alone accepts "²" and other scripts' digits
                return digits_only(text)
            if text in short:
                return text
            digits = text.translate(separators)
            if not digits.isascii():
                digits = ""
            if digits.startswith("+") and digits[1:].isdigit():
                return _checked(digits[1:], text)
            if digits.isdigit():
                return digits_only(digits)
            if keep_names:
                return text
            raise ConversionError("value.bad-number", f"not a telephone number: {text[:40]!r}")

        cache: dict[str, str] = {"": ""}
        lookup = cache.get

        def normalise(text: str) -> str:
            out = lookup(text)
            if out is None:
                # plain ASCII digits (most numbers) skip compute()'s separator handling
                out = digits_only(text) if text.isdigit() and text.isascii() else compute(text)
                if len(cache) >= cache_size:
                    cache.clear()
                    cache[""] = ""
                cache[text] = out
            return out

        def fill(texts: Iterable[str]) -> None:
            """Memoise many numbers at once (the batch mapper's misses): plain digits without compute()."""
            texts = list(texts)
            if len(cache) + len(texts) >= cache_size:
                cache.clear()
                cache[""] = ""
            for text in texts:
                if text.isdigit() and text.isascii() and len(text) > ext_max and text not in short:
                    e164 = rewrite(text)
                    if 7 <= len(e164) <= 15 and e164[0] != "0":
                        cache[text] = e164
                        continue
                cache[text] = compute(text)   # everything else, and the errors, as normalise() does

        normalise.memo = cache  # type: ignore[attr-defined]
        normalise.fill = fill  # type: ignore[attr-defined]
        normalise.column = self._column_function()  # type: ignore[attr-defined]
        return normalise


    def _column_function(self) -> Callable[[Sequence[str]], list[str] | None]:
        """A whole column of plain digit strings at once, in C-level string operations, or ``None``.

        Gives exactly :meth:`compile`'s results or declines (``None``: use the per-value
        normaliser, which also reports the errors).  It takes a column only when every value
        is ASCII digits longer than ``extension_max_length`` (so not an extension; short codes
        must be that short too, else it never takes one), and checks every result is E.164.
        The prefixes are rewritten on the joined column, where each value starts after a line
        break: international prefixes (longest first, as the per-value loop) become a marker,
        then the national prefix becomes the country code, then the markers go.
        """
        if any(len(code) > self.extension_max_length for code in self.short_codes) or self.unprefixed == "national":
            return _declines
        shortest = self.extension_max_length + 1
        intl = tuple("\n" + p for p in sorted(self.international_prefixes, key=len, reverse=True) if p)
        national = "\n" + self.national_prefix if self.national_prefix else ""
        to_cc = "\n" + self.country_code

        intl_prefixes = tuple(p[1:] for p in intl)
        national_prefix = national[1:]

        def column(values: Sequence[str]) -> list[str] | None:
            if _c_column is not None and type(values) is list:   # the same rewrite in one C pass, or it declines
                got = _c_column(values, shortest, intl_prefixes, national_prefix, self.country_code)
                if got is not None:
                    return got
            if not values or min(map(len, values)) < shortest:
                return None
            joined = "\n".join(values)
            digits = joined.replace("\n", "")
            if not (digits.isdigit() and digits.isascii()):   # ASCII digits only (isdigit alone takes '²')
                return None
            text = "\n" + joined
            for prefix in intl:
                text = text.replace(prefix, "\n+")
            if national:
                text = text.replace(national, to_cc)
            text = text.replace("\n+", "\n")
            if "\n0" in text:   # E.164 never starts with 0
                return None
            out = text[1:].split("\n")
            if len(out) != len(values) or min(map(len, out)) < 7 or max(map(len, out)) > 15:
                return None   # a line break inside a value, or not 7-15 digits
            return out

        return column


def _declines(values: Sequence[str]) -> None:
    return None


def _checked(e164: str, original: str) -> str:
    # E.164: at most 15 digits, country codes never start with 0
    if not 7 <= len(e164) <= 15 or e164[0] == "0":
        raise ConversionError("value.bad-number", f"{original[:40]!r} does not normalise to an E.164 number ({e164[:20]!r})")
    return e164


def parse_numbering_overrides(node: Any, file: str, problems: list[Problem]) -> dict[str, Any]:
    """The keys a ``numbering:`` section gives, checked, as :class:`NumberingPlan` arguments.

    A layout's section and a source's section are merged (the source wins) by
    :func:`merge_numbering`; whether the result has the country code it needs is checked there.
    """
    if node is None:
        return {}
    f = Fields(node, "numbering", problems)
    cc = f.optional("country_code", str)
    intl = f.optional("international_prefixes", list)
    national = f.optional("national_prefix", str)
    unprefixed = f.optional("unprefixed", str)
    short = f.optional("short_codes", list)
    ext_max = f.optional("extension_max_length", int)
    non_numeric = f.optional("non_numeric", str)
    f.done()
    out: dict[str, Any] = {}
    if cc is not None:
        if cc and not (cc.isdigit() and 1 <= len(cc) <= 3 and cc[0] != "0"):
            problems.append(Problem.at(f.node.mark_of("country_code"), "numbering.bad-country-code", "country_code must be 1-3 digits, not starting with 0"))
        out["country_code"] = cc
    if unprefixed is not None:
        if unprefixed not in ("international", "national"):
            problems.append(Problem.at(f.node.mark_of("unprefixed"), "numbering.bad-choice", "unprefixed must be international or national"))
        out["unprefixed"] = unprefixed
    if non_numeric is not None:
        if non_numeric not in ("keep", "reject"):
            problems.append(Problem.at(f.node.mark_of("non_numeric"), "numbering.bad-choice", "non_numeric must be keep or reject"))
        out["non_numeric"] = non_numeric
    if national is not None:
        if national and not national.isdigit():
            problems.append(Problem.at(f.node.mark_of("national_prefix"), "numbering.bad-prefix", "the national prefix is digits such as '0', or empty"))
        out["national_prefix"] = national
    if intl is not None:
        for i, p in enumerate(intl):
            if not (isinstance(p, str) and p.isdigit()):
                problems.append(Problem.at(intl.mark_of(i), "numbering.bad-prefix", "international prefixes are digit strings such as '00'"))
        out["international_prefixes"] = tuple(p for p in intl if isinstance(p, str))
    if short is not None:
        for i, code in enumerate(short):
            if not (isinstance(code, str) and code):
                problems.append(Problem.at(short.mark_of(i), "numbering.bad-short-code", "short codes are non-empty text, e.g. '112'"))
        out["short_codes"] = frozenset(c for c in short if isinstance(c, str))
    if ext_max is not None:
        if ext_max < 0 or ext_max > 6:
            problems.append(Problem.at(f.node.mark_of("extension_max_length"), "numbering.bad-extension-length", "extension_max_length must be 0-6"))
        out["extension_max_length"] = ext_max
    return out


def merge_numbering(*overrides: dict[str, Any]) -> NumberingPlan:
    """The plan from the defaults and each set of overrides in turn (later ones win)."""
    merged: dict[str, Any] = {}
    for o in overrides:
        merged.update(o)
    return NumberingPlan(**merged)


def parse_numbering(node: Any, file: str, problems: list[Problem]) -> NumberingPlan:
    """One complete plan (a section that must stand alone): overrides on the defaults, country code checked."""
    overrides = parse_numbering_overrides(node, file, problems)
    plan = merge_numbering(overrides)
    if node is not None and plan.missing_country_code():
        problems.append(Problem.at(node.mark_of("national_prefix") if "national_prefix" in node else Fields(node, "numbering", []).mark,
                                   "numbering.missing-country-code", "a national prefix or national unprefixed numbers need country_code"))
    return plan
