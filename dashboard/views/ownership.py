"""Ownership pages: the rules, why a finding or an image has its owner, and the unowned queue.

Everyone reads the rules of their teams and the explanation of what they can see (404 otherwise);
only administrators change rules, work the unowned queue and set owners by hand (403 otherwise).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.errors import ApplicationError
from dashboard.models import OwnershipRule, Team
from dashboard.selectors import ownership as ownership_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.selectors.access import can_manage_ownership, can_view_audit
from dashboard.services.audit import client_ip
from dashboard.services.ownership_rules import finding_set_owner, rule_create, rule_delete, rule_update


class RuleForm(forms.Form):
    kind = forms.ChoiceField(choices=OwnershipRule.Kind.choices)
    pattern = forms.CharField(
        max_length=500,
        help_text="image: registry.example.com/payments/* · namespace: payments-* · label: team=payments",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), to_field_name="slug")
    priority = forms.IntegerField(initial=0, help_text="breaks ties between equally specific rules: higher wins")
    note = forms.CharField(max_length=500, required=False, help_text="why this rule exists (kept in the audit log)")


class OwnerForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), to_field_name="slug", required=False, empty_label="— back to the rules —"
    )
    reason = forms.CharField(max_length=500, required=False)


def _require_admin(request: HttpRequest) -> None:
    if not can_manage_ownership(request.user):
        raise PermissionDenied("only administrators change ownership")


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/ownership.html",
        {
            "rules": ownership_selectors.rule_list(user=request.user),
            "can_manage": can_manage_ownership(request.user),
            "can_view_audit": can_view_audit(request.user),
            "form": RuleForm(initial={key: request.GET[key] for key in ("kind", "pattern") if key in request.GET}),
        },
    )


@login_required
@require_POST
def rule_new(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            rule = rule_create(by=request.user, ip=client_ip(request.META), **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error("pattern", exc.message)
        else:
            messages.success(request, f"Rule #{rule.pk} saved; matching findings are being re-assigned.")
            return redirect("ownership")
    return render(
        request,
        "dashboard/ownership.html",
        {"rules": ownership_selectors.rule_list(user=request.user), "can_manage": True, "form": form},
        status=400,
    )


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = ownership_selectors.rule_get(user=request.user, pk=pk)
    _require_admin(request)
    initial = {"kind": rule.kind, "pattern": rule.pattern, "team": rule.team.slug, "priority": rule.priority, "note": rule.note}
    form = RuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rule_update(rule=rule, by=request.user, ip=client_ip(request.META), **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error("pattern", exc.message)
        else:
            messages.success(request, f"Rule #{rule.pk} saved; affected findings are being re-assigned.")
            return redirect("ownership")
    return render(request, "dashboard/ownership_rule.html", {"rule": rule, "form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
def rule_remove(request: HttpRequest, pk: int) -> HttpResponse:
    rule = ownership_selectors.rule_get(user=request.user, pk=pk)
    _require_admin(request)
    rule_delete(rule=rule, by=request.user, ip=client_ip(request.META), reason=request.POST.get("reason", "")[:500])
    messages.success(request, f"Rule #{pk} deleted; the findings it owned are being re-assigned.")
    return redirect("ownership")


@login_required
def unowned(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    return render(request, "dashboard/ownership_unowned.html", {"queue": ownership_selectors.unowned_queue(user=request.user)})


def _explain(request: HttpRequest, explanation: Any, image: Any = None) -> HttpResponse:
    return render(
        request,
        "dashboard/ownership_explain.html",
        {
            "why": explanation,
            "finding": explanation.finding,
            "image": image,
            "can_manage": can_manage_ownership(request.user),
            "owner_form": OwnerForm(),
        },
    )


@login_required
def finding_owner(request: HttpRequest, pk: int) -> HttpResponse:
    return _explain(request, ownership_selectors.explain_finding(user=request.user, pk=pk))


@login_required
def image_owner(request: HttpRequest, pk: int) -> HttpResponse:
    image = team_selectors.image_get(user=request.user, pk=pk)
    return _explain(request, ownership_selectors.explain_image(user=request.user, image=image), image=image)


@login_required
@require_POST
def finding_owner_set(request: HttpRequest, pk: int) -> HttpResponse:
    explanation = ownership_selectors.explain_finding(user=request.user, pk=pk)  # 404 for what the user cannot read
    _require_admin(request)
    form = OwnerForm(request.POST)
    if not form.is_valid() or explanation.finding is None:
        messages.error(request, "Choose a team, or none to hand the finding back to the rules.")
        return redirect("ownership-finding", pk=pk)
    finding_set_owner(
        finding=explanation.finding,
        team=form.cleaned_data["team"],
        by=request.user,
        ip=client_ip(request.META),
        reason=form.cleaned_data["reason"],
    )
    messages.success(request, "Owner saved.")
    return redirect("ownership-finding", pk=pk)
