"""Slow reference implementations, kept only as test oracles."""
