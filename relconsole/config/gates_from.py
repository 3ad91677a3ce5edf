"""`gates_from:` — a release's gates imported from an Argo Rollouts AnalysisTemplate.

Three sources, one of them: `file:` (the template's YAML beside the config, imported when
the config loads, so `relconsole check` judges it offline), `analysis_template:` or
`cluster_analysis_template:` (read from the cluster by the argo-rollouts provider when a
console starts; `GatesFrom.reference` names it). Either way the import is
`analysis_template.gates_from_template`, and anything it cannot map is refused with a
message naming the expression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from relconsole.config.analysis_template import Imported, TemplateError, gates_from_template
from relconsole.model import ReleasePlan


@dataclass(frozen=True)
class GatesFrom:
    """What `gates_from:` asks for, as the loader read it."""

    kind: str  # "AnalysisTemplate", "ClusterAnalysisTemplate" or "file"
    name: str  # the template's name, or the file's path as written
    args: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None  # the file, resolved beside the config

    @property
    def from_cluster(self) -> bool:
        return self.path is None

    @property
    def reference(self) -> str:
        return f"{self.kind} {self.name}" if self.from_cluster else f"template file {self.name}"


def read_template_file(path: Path) -> dict[str, Any]:
    """The template a YAML file holds; TemplateError (one problem) when it holds none."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError([f"{path}: cannot be read ({exc.strerror or exc}). Check the "
                             "gates_from.file path (relative to the config file)."]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TemplateError([f"{path}: not valid YAML{where}. Export the template with "
                             "kubectl get analysistemplate NAME -o yaml."]) from None
    if not isinstance(doc, dict):
        raise TemplateError([f"{path}: holds no AnalysisTemplate (a YAML mapping with kind, "
                             "metadata and spec). Export it with kubectl get "
                             "analysistemplate NAME -o yaml."])
    return doc


def merge(plan: ReleasePlan, imported: Imported, source: str) -> ReleasePlan:
    """`plan` with the imported metrics and gates after its own.

    A name the config already uses for a metric is refused rather than shadowed: two
    metrics of one name would make a gate judge whichever came last.
    """
    own = {m.name for m in plan.metrics}
    clash = sorted(own & {m.name for m in imported.metrics})
    if clash:
        raise TemplateError([f"{source}: metric {name!r} is also defined under metrics:. "
                             "Rename one of them." for name in clash])
    return dataclasses.replace(
        plan,
        metrics=(*plan.metrics, *imported.metrics),
        gates=(*plan.gates, *imported.gates),
    )


def apply(plan: ReleasePlan, template: Mapping[str, Any], wanted: GatesFrom) -> ReleasePlan:
    """Import `template` as `wanted` says into `plan`; TemplateError lists every problem."""
    imported = gates_from_template(template, args=dict(wanted.args))
    return merge(plan, imported, wanted.reference)
