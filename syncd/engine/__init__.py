"""The engine: planning (pure), applying a plan, the reconciliation cycle, the state store.

``Reconciler`` is what the app layer drives; the rest is exported for tests and ``syncd plan``.
"""

from syncd.engine.applier import Applier, ApplyResult
from syncd.engine.planner import Delete, MappingDesire, Plan, Policy, TargetPlan, Write, plan, targets_needing_names
from syncd.engine.reconciler import Reconciler
from syncd.errors import CycleTimeout

__all__ = [
    "Applier",
    "ApplyResult",
    "CycleTimeout",
    "Delete",
    "MappingDesire",
    "Plan",
    "Policy",
    "Reconciler",
    "TargetPlan",
    "Write",
    "plan",
    "targets_needing_names",
]
