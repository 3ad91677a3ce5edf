"""Before the release: the deployment plan (`relconsole plan`) and the preflight checks
(`relconsole check --preflight`).

By job: `facts` (what the providers say now: traffic, the Rollout's steps, the flags),
`risk` (the risk level and one explained line per factor), `model` (the plan as typed
values, built without I/O from the config and the facts), `render_md` (the Markdown
structure the issue fixes, and the JSON beside it) and `preflight` (the checks, run).
"""

from __future__ import annotations

from relconsole.plan.facts import LiveFacts, gather
from relconsole.plan.model import Plan, build_plan
from relconsole.plan.render_md import render_json, render_markdown

__all__ = ["LiveFacts", "Plan", "build_plan", "gather", "render_json", "render_markdown"]
