"""The bounds of one plan set a caller sends (UploadPlanSet, ValidatePlanSet, bootstrap).

A plan set is data from a client: its size, its files, its keys and values, the problems one reply
lists and the time spent checking it are all bounded, so that one request cannot hold a core for
minutes or build a reply of tens of megabytes.  The server takes them from the settings
(``max_plan_set_*``, ``max_problems*``, ``max_validation_seconds``; docs/SECURITY.md), whose
defaults are the defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ResourceExhausted
from engine.settings import Settings
from engine.yamlio import NodeBudget


@dataclass(frozen=True)
class PlanSetLimits:
    max_bytes: int = Settings.max_plan_set_bytes
    max_files: int = Settings.max_plan_set_files
    max_values: int = Settings.max_plan_set_values
    max_problems_per_file: int = Settings.max_problems_per_file
    max_problems: int = Settings.max_problems
    max_seconds: float = Settings.max_validation_seconds
    max_path: int = 1024

    @classmethod
    def of(cls, settings: Settings) -> "PlanSetLimits":
        return cls(settings.max_plan_set_bytes, settings.max_plan_set_files, settings.max_plan_set_values,
                   settings.max_problems_per_file, settings.max_problems, settings.max_validation_seconds)

    def budget(self) -> NodeBudget:
        """The keys and values every YAML file of one plan set may hold together."""
        return NodeBudget(self.max_values, f" in the plan set (setting max_plan_set_values = {self.max_values})")

    def too_slow(self) -> ResourceExhausted:
        return ResourceExhausted(f"checking this plan set took longer than {self.max_seconds:g} s "
                                 "(setting max_validation_seconds); split it or simplify it")

