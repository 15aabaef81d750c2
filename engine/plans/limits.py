"""The bounds of one plan set a caller sends (UploadPlanSet, ValidatePlanSet, bootstrap).

A plan set is data from a client: its size, its files, its keys and values, the problems one reply
lists and the time spent checking it are all bounded, so that one request cannot hold a core for
minutes or build a reply of tens of megabytes.  The server takes them from the settings
(``max_plan_set_*``, ``max_problems*``, ``max_validation_seconds``; docs/SECURITY.md); the
defaults below are the settings' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ResourceExhausted
from engine.yamlio import NodeBudget


@dataclass(frozen=True)
class PlanSetLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_files: int = 5000
    max_values: int = 200_000
    max_problems_per_file: int = 100
    max_problems: int = 1000
    max_seconds: float = 30.0
    max_path: int = 1024

    def budget(self) -> NodeBudget:
        """The keys and values every YAML file of one plan set may hold together."""
        return NodeBudget(self.max_values, f" in the plan set (setting max_plan_set_values = {self.max_values})")

    def too_slow(self) -> ResourceExhausted:
        return ResourceExhausted(f"checking this plan set took longer than {self.max_seconds:g} s "
                                 "(setting max_validation_seconds); split it or simplify it")

