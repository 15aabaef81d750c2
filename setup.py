"""The C extensions (everything else is in pyproject.toml): the mediation fast path's CSV block splitter and CDR
identities, the rating batch loop's plain rows, the per-row loops of rating a chunk with counters,
`rulebill replay`'s expected lines written and compared, the bill run's usage.csv rows written from PostgreSQL's arrays,
RatingService's wire side of a chunk (CDRs read from and replies written to protobuf's wire format), and the usage
ledger's COPY rows on PostgreSQL.

engine/mediation/csvblock.py falls back to csv.reader, engine/mediation/batch.py to hashlib, engine/rating/evaluator.py
to its Python loop, engine/rating/desk.py and usage.py to their Python loops,
engine/replay.py to each CDR's full form (engine.replay.full_form), engine/billing/usagecsv.py to its Python writer, servers/convert.py and servers/rating_service.py
to protobuf's messages, and store/plans.py to psycopg's own COPY rows when the extension is missing, so a machine
without a C compiler still installs (``optional``) and works the same, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("engine.mediation._csvblock", ["engine/mediation/_csvblock.c"], optional=True),
    Extension("engine.mediation._cdrid", ["engine/mediation/_cdrid.c"], optional=True),
    Extension("engine.rating._rowkernel", ["engine/rating/_rowkernel.c"], optional=True),
    Extension("engine.rating._chunkrows", ["engine/rating/_chunkrows.c"], include_dirs=["engine"], depends=["engine/_untrack.h"],
              optional=True),
    Extension("engine._replaylines", ["engine/_replaylines.c"], optional=True),
    Extension("engine.billing._usagecsv", ["engine/billing/_usagecsv.c"], optional=True),
    Extension("servers._wire", ["servers/_wire.c"], include_dirs=["engine"], depends=["engine/_untrack.h"], optional=True),
    Extension("store._copytext", ["store/_copytext.c"], optional=True),
])
