"""The Grafana dashboard's queries, made concrete for Prometheus (its template variables filled in).

``PENDING_METRICS`` names metrics the dashboard already charts but syncd does not export yet (other
work in flight). A query that reads one of them is only checked to parse; every other query must
return data in the end-to-end test. When syncd starts exporting one, move it out of this set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from tests.monitoring.prom_tools import DASHBOARD

PENDING_METRICS: Final[frozenset[str]] = frozenset()

# PromQL functions and keywords that look like metric names to the regex below.
_NOT_METRICS: Final = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"})
_IDENTIFIER: Final = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


@dataclass(frozen=True)
class Query:
    panel: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.panel} [{self.ref_id}]"

    def metrics(self) -> set[str]:
        """Metric names the query reads (identifiers outside label matchers, grouping and calls)."""
        bare = re.sub(r"\{[^}]*\}", "", self.expr)  # label matchers
        bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
        bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
        return {name for name in _IDENTIFIER.findall(bare) if name not in _NOT_METRICS and not name[0].isdigit()}

    def pending(self) -> bool:
        return bool(self.metrics() & PENDING_METRICS)

    def concrete(self, *, job: str = ".+", rate_interval: str = "5m") -> str:
        """The expression as Grafana sends it: ``$job`` (a regex) and ``$__rate_interval`` filled in."""
        return self.expr.replace("$__rate_interval", rate_interval).replace("$job", job)


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel that draws something (rows left out, panels nested in collapsed rows included)."""
    found: list[dict[str, Any]] = []
    for panel in (dashboard or load())["panels"]:
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def queries(dashboard: dict[str, Any] | None = None) -> list[Query]:
    return [
        Query(panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any] | None = None) -> dict[str, str]:
    """The PromQL behind each ``label_values(METRIC, LABEL)`` template variable: ``count by (LABEL) (METRIC)``."""
    found: dict[str, str] = {}
    for variable in (dashboard or load())["templating"]["list"]:
        if variable.get("type") != "query":
            continue
        definition = variable.get("definition", "")
        match = re.fullmatch(r"label_values\((.+),\s*([a-zA-Z_]\w*)\)", definition)
        if match is None:
            raise AssertionError(f"variable {variable['name']}: unsupported query {definition!r}")
        found[variable["name"]] = f"count by ({match.group(2)}) ({match.group(1)})"
    return found
