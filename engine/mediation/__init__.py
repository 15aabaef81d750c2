"""Mediation: raw CDR files of many switches into normalised CDRs, with nothing lost.

Public API::

    layout = find_layout("rules/mediation", "asterisk")        # or load_layout(path)
    store = MemoryMediationStore()                              # or a store implementing the ports
    summary = Mediator(layout, sink=store, seen=store).mediate_path("Master.csv")
    summary.check()                                             # counts reconcile (already asserted)

See ``rules/mediation/README.md`` for the layout language.
"""

from engine.mediation.desk import MediationDesk, MediationStore
from engine.mediation.layout import Layout, find_layout, layout_names, load_layout, load_layout_text, validate_directory
from engine.mediation.mapper import CompiledLayout, compile_layout
from engine.mediation.memory import MemoryMediationStore
from engine.mediation.outcome import FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.pipeline import Mediator, file_id_of
from engine.mediation.ports import Checkpoint, MediationChunk, MediationSink, PendingRecord, SeenCdrIds
from engine.mediation.problems import FieldError, FileLevelError, LayoutError, ReconciliationError
from engine.mediation.rows import CdrRow, cdr_to_row, row_to_cdr, row_text
from engine.mediation.tenants import TenantDirectory, load_tenants

__all__ = [
    "CdrRow",
    "Checkpoint",
    "CompiledLayout",
    "FieldError",
    "FileLevelError",
    "FileProblem",
    "Layout",
    "LayoutError",
    "MediationChunk",
    "MediationDesk",
    "MediationStore",
    "MediationSink",
    "Mediator",
    "MemoryMediationStore",
    "PendingRecord",
    "ReconciliationError",
    "ReconciliationSummary",
    "RejectedRecord",
    "SeenCdrIds",
    "TenantDirectory",
    "cdr_to_row",
    "compile_layout",
    "file_id_of",
    "find_layout",
    "layout_names",
    "load_layout",
    "load_layout_text",
    "load_tenants",
    "row_text",
    "row_to_cdr",
    "validate_directory",
]
