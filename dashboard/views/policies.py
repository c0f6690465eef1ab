"""Enforcement policy pages: every team's policy and recent decisions; a team admin edits the team's policy, with its history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.enforcement.decision import MODES, OUTCOMES, SEVERITIES
from dashboard.errors import ApplicationError
from dashboard.models import Team
from dashboard.selectors import policies as policy_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.selectors.access import can_edit_policy
from dashboard.selectors.enforcement import policy_for, policy_row
from dashboard.services.audit import client_ip
from dashboard.services.policies import policy_update


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(choices=_choices(MODES), help_text="audit: record only · warn: allow with warnings · enforce: deny")
    namespace_modes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="one per line: namespace=mode (patterns with * allowed)"
    )
    min_severity = forms.ChoiceField(choices=[("", "off"), *_choices(SEVERITIES)], required=False, label="Severity at or above")
    fix_required = forms.BooleanField(
        required=False, label="Only when a fix is available", help_text="applies to the severity and EPSS rules"
    )
    kev = forms.BooleanField(required=False, label="Known exploited (KEV)")
    epss_min = forms.FloatField(required=False, min_value=0, max_value=1, label="EPSS at or above", help_text="0 to 1; empty: off")
    sla_overdue = forms.BooleanField(required=False, label="SLA overdue")
    secrets = forms.BooleanField(required=False, label="Secrets in the image")
    rule_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Rule ids",
        help_text="one per line: KSV012, disallow-latest-tag, CVE-2024-*",
    )
    unknown_image = forms.ChoiceField(choices=_choices(OUTCOMES), label="Image never seen", help_text="never more than the mode allows")
    reason = forms.CharField(max_length=500, required=False, help_text="why (kept with the version and in the audit log)")

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        pairs = [line.split("=", 1) for line in data["namespace_modes"].splitlines() if line.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ApplicationError("namespace modes: write one namespace=mode per line", code="invalid")
        return {
            "mode": data["mode"],
            "namespace_modes": {name.strip(): mode.strip() for name, mode in pairs},
            "min_severity": data["min_severity"],
            "fix_required": data["fix_required"],
            "kev": data["kev"],
            "epss_min": data["epss_min"],
            "sla_overdue": data["sla_overdue"],
            "secrets": data["secrets"],
            "rule_ids": [line.strip() for line in data["rule_ids"].splitlines() if line.strip()],
            "unknown_image": data["unknown_image"],
        }


def _initial(team: Team | None) -> dict[str, Any]:
    policy = policy_for(team_id=team.pk if team is not None else None)
    return {
        "mode": policy.mode,
        "namespace_modes": "\n".join(f"{name}={mode}" for name, mode in policy.namespace_modes),
        "rule_ids": "\n".join(policy.rule_ids),
        "unknown_image": policy.unknown_image,
        **{key: value for key, value in policy.rules().items() if key != "rule_ids"},
    }


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    context = {
        "policies": policy_selectors.policy_overview(user=request.user),
        "decisions": policy_selectors.decision_list(user=request.user),
    }
    return render(request, "dashboard/policies.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    team = team_selectors.team_get(user=request.user, slug=slug) if slug else None  # the organisation default: anyone reads it
    can_edit = can_edit_policy(request.user, team)
    form = PolicyForm(request.POST if request.method == "POST" else None, initial=_initial(team))
    if request.method == "POST" and form.is_valid():
        try:
            changes, reason = form.changes(), form.cleaned_data["reason"]
            policy = policy_update(team=team, by=request.user, changes=changes, reason=reason, ip=client_ip(request.META))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved: the policy is now at version {policy.version}.")
            return redirect(request.path)
    context = {
        "team": team,
        "form": form,
        "can_edit": can_edit,
        "own": policy_row(team_id=team.pk if team is not None else None) is not None,
        "versions": policy_selectors.policy_versions(team=team),
        "decisions": policy_selectors.decision_list(user=request.user, team=team, limit=20) if team is not None else [],
    }
    return render(request, "dashboard/policy.html", context, status=403 if request.method == "POST" and not can_edit else 200)
