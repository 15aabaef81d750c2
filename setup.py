"""The one C extension: the mediation fast path's CSV block splitter (everything else is in pyproject.toml).

engine/mediation/csvblock.py falls back to csv.reader when the extension is missing, so a
machine without a C compiler still installs (``optional``) and mediates the same, only slower.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("engine.mediation._csvblock", ["engine/mediation/_csvblock.c"], optional=True)])
