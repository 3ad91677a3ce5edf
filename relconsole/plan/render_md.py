"""The plan as Markdown, in the structure issue 13 fixes (a contract: the headings, their
order and the three Risk Assessment lines), and as JSON with the same content.

```
## Deployment Plan: <service> <version>
### Risk Assessment          Risk Level, Rollback Time, Blast Radius, then one line a factor
### Pre-Deployment Checklist - [ ] one line a check
### Deployment Steps         1. a step  2. its validation checkpoint  3. the next step …
### Rollback Procedure       1. trigger conditions  2. rollback steps
### Monitoring               dashboards, key metrics with units, alert thresholds
### Flag Configuration       each release flag, its type, state and plan
### Communication Plan       who is told what, when
```
"""

from __future__ import annotations

import json

from relconsole.plan.model import Plan

HEADINGS = (
    "### Risk Assessment",
    "### Pre-Deployment Checklist",
    "### Deployment Steps",
    "### Rollback Procedure",
    "### Monitoring",
    "### Flag Configuration",
    "### Communication Plan",
)


def title(plan: Plan) -> str:
    return f"## Deployment Plan: {plan.service} {plan.version}"


def render_markdown(plan: Plan) -> str:
    risk = plan.risk
    out = [title(plan), ""]
    out.append(f"{plan.environment}, {plan.strategy}; clock times from {plan.generated_at}.")
    out += ["", HEADINGS[0]]
    out.append(f"- Risk Level: {risk.level.word}")
    out.append(f"- Rollback Time: {risk.rollback_time}")
    out.append(f"- Blast Radius: {risk.blast_radius}")
    out += [f"- {factor.line()}" for factor in risk.factors]
    out += ["", HEADINGS[1]]
    out += [f"- [ ] {item}" for item in plan.checklist]
    out += ["", HEADINGS[2]]
    number = 0
    for step in plan.steps:
        number += 1
        out.append(f"{number}. {step.text}")
        number += 1
        out.append(f"{number}. {step.checkpoint}")
    if plan.steps_note:
        if plan.steps:
            out.append("")
        out.append(f"_{plan.steps_note}_" if plan.steps else plan.steps_note)
    out += ["", HEADINGS[3]]
    out.append("1. Trigger conditions:")
    out += [f"   - {line}" for line in plan.triggers]
    out.append("2. Rollback steps:")
    out += [f"   {i}. {line}" for i, line in enumerate(plan.rollback, 1)]
    out += ["", HEADINGS[4]]
    out += [f"- {line}" for line in plan.dashboards]
    out += [f"- Key metric: {line}" for line in plan.key_metrics]
    out += [f"- Alert threshold: {line}" for line in plan.alerts]
    out += ["", HEADINGS[5]]
    if plan.flags:
        for flag in plan.flags:
            kind = f" ({flag.kind})" if flag.kind else ""
            out.append(f"- `{flag.key}`{kind}: {flag.state}; planned: {flag.planned}")
    else:
        out.append("- No release flags listed (release.flags)")
    out += ["", HEADINGS[6]]
    out += [f"- {line}" for line in plan.communication]
    return "\n".join(out) + "\n"


def render_json(plan: Plan) -> str:
    return json.dumps(plan.as_dict(), indent=2, ensure_ascii=False)
