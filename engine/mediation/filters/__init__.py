"""Filters: records a layout drops on purpose, each counted under its own id.

One model per kind behind :class:`Filter`, dispatched from :data:`FILTERS`.  A filter
looks either at a raw ``column`` (checked before any conversion, so unanswered
attempts with odd timestamps are filtered, not rejected) or at a converted CDR
``field``::

    filters:
      - {id: unanswered, column: disposition, not_in: [ANSWERED]}
      - {id: zero-billable, field: duration_seconds, equals: 0}
      - {id: test-numbers, field: a_number, matches: "^4477009999"}
      - {id: not-ours, column: trunk, not_matches: "^ours-"}

Each model renders a condition for the generated mapper (see ``mapper.py``):
``condition(expr, name)`` returns Python source that tests ``expr`` using only
names it binds into the namespace, never text from the layout.
"""

from __future__ import annotations

from engine.mediation.filters.base import Filter
from engine.mediation.filters.below import Below
from engine.mediation.filters.equals import Equals
from engine.mediation.filters.in_set import In
from engine.mediation.filters.matches import Matches
from engine.mediation.filters.negated import Negated
from engine.mediation.filters.not_matches import NotMatches
from engine.mediation.filters.not_in import NotIn

# the one table a layout's filter kind is looked up in
FILTERS: dict[str, type[Filter]] = {f.kind: f for f in (Equals, In, NotIn, Matches, NotMatches, Below)}

__all__ = ["FILTERS", "Below", "Equals", "Filter", "In", "Matches", "Negated", "NotIn", "NotMatches"]
