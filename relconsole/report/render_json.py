"""The report as one JSON document: the same content as the Markdown, for scripts.

Shape (`schema` "relconsole.report/1"; times are Unix seconds, durations seconds, a
value that is not known is null; the README's "Report" section shows an example):

    schema, release, service, version, baseline_version, environment,
    outcome ("promoted", "rolled back", "ROLLBACK NOT VERIFIED", "paused", …),
    started, ended, records,
    timeline: [{seq, at, done_at, actor, automatic, intent, reason, step_before,
                step_after, weight_before, weight_after, phase_after, outcome}],
    verdict_changes: [{at, seq, gate, before, after: {gate, verdict, canary, baseline,
                       unit, threshold, reason, consecutive_failures}}],
    decisions: [{at, intent, reason, on_behalf_of, outcome, gates: [<gate as above>]}],
    flags: [{at, key, intent, actor, reason, before, after, outcome}],
    migrations: [{at, name, phase, direction ("up" | "down"), command: [str], actor,
                  reason, outcome, text}],
    timing: {fault_at, fault_basis, detected_at, detected_gates, rollback_at,
             rollback_verified_at, fault_to_detection, detection_to_rollback_verified},
    incident_review: null | {rolled_back, seen: [str], when: [[str, at]], done: [str],
                             check_next: [str]},
    marks: [{at, label, kind}],          # step boundaries: "step", "promote", "rollback"
    charts: [{metric, title, unit, limit, points: [{at, canary, baseline}]}],
    dashboards: [[what, address]], notes: [str]
"""

from __future__ import annotations

import dataclasses
import json

from relconsole.report.model import Report


def report_dict(report: Report) -> dict[str, object]:
    return dataclasses.asdict(report)


def render_json(report: Report) -> str:
    return json.dumps(report_dict(report), ensure_ascii=False, indent=2) + "\n"
