"""Statements: gap detection for every frequency and set-based generation (docs/statements.md)."""

from __future__ import annotations

from paynb.ops.statements.gaps import GapReport, find_statement_gaps
from paynb.ops.statements.generation import (
    GenerationPlan,
    GenerationResult,
    KindCounts,
    generate,
    generate_range,
)
from paynb.ops.statements.periods import Period, periods_for_day, periods_for_range

__all__ = [
    "GapReport",
    "GenerationPlan",
    "GenerationResult",
    "KindCounts",
    "Period",
    "find_statement_gaps",
    "generate",
    "generate_range",
    "periods_for_day",
    "periods_for_range",
]
