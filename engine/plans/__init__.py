"""The plan language: load, validate and compile tariff catalogues.

Public API::

    load_plan_set(paths, root=None) -> (PlanSet | None, list[Problem])     # None when any problem
    compile_plan_set(plan_set) -> CompiledPlans                            # engine.rating.CompiledPlans
    CompiledPlans.to_ir() -> dict / CompiledPlans.from_ir(ir)
    build_ir(plan_set) -> dict, dump_ir(ir) -> str, ir_digest(ir) -> str
"""

from engine.plans.compiler import IR_FORMAT, build_ir, compile_plan_set, dump_ir, ir_digest
from engine.plans.loader import load_plan_set, parse_plan_files
from engine.plans.model import PlanSet

__all__ = ["IR_FORMAT", "PlanSet", "build_ir", "compile_plan_set", "dump_ir", "ir_digest", "load_plan_set", "parse_plan_files"]
