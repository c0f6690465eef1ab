"""Which teams' findings a report's sender may change: create, update, fix, reopen or hold for confirmation.

A report changes only findings its sender may change: those of the teams its token covers (its own and an
integration token's extra teams), every team's with the organisation-wide grant (``ApiToken.all_teams``),
those of the teams a person may triage (administrators: every team), and unowned findings.  A report stored
without a sender (``manage.py ingest``, the demo) was put there by an operator and may change everything.
Findings of other teams in the report's scope are left as they are and counted as ``not_yours``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, Report
from dashboard.selectors.access import triage_team_ids

#: Why a report is refused when everything it is about belongs to teams its sender may not change (never which team).
FOREIGN_SCOPE = (
    "every finding this report is about belongs to a team this sender may not change: nothing was applied "
    "(a token changes only its own teams' findings; a platform scanner needs an organisation-wide token, create_token --all-teams)"
)


class ForeignScopeError(ApplicationError):
    """The whole scope of a report belongs to teams its sender may not change."""

    def __init__(self) -> None:
        super().__init__(FOREIGN_SCOPE, code="not_your_scope", status=403)


@dataclasses.dataclass(frozen=True)
class SenderRights:
    """The teams a sender may change the findings of (``everything``: all of them)."""

    everything: bool
    team_ids: frozenset[int] = frozenset()

    def may_change(self, team_id: int | None) -> bool:
        """Unowned findings are anyone's to report on; owned ones only their team's senders'."""
        return self.everything or team_id is None or team_id in self.team_ids


EVERYTHING = SenderRights(everything=True)


def rights_of(*, token: ApiToken | None = None, user: Any = None) -> SenderRights:
    """The rights of a token or a person (one query); neither: an operator, who may change everything."""
    if token is not None:
        return EVERYTHING if token.all_teams else SenderRights(everything=False, team_ids=frozenset(token.team_ids()))
    if user is not None and getattr(user, "is_authenticated", False):
        return _user_rights(user)
    return EVERYTHING


def report_sender_rights(report: Report) -> SenderRights:
    """The rights of the report's sender, looked up once and kept on the report object while it is applied."""
    rights: SenderRights | None = getattr(report, "_sender_rights", None)
    if rights is None:
        if report.token_id is not None:
            rights = _token_rights(report.token_id)
        elif report.submitted_by_id is not None:
            rights = _user_rights(get_user_model().objects.get(pk=report.submitted_by_id))
        else:
            rights = EVERYTHING
        report._sender_rights = rights  # type: ignore[attr-defined]
    return rights


def _token_rights(token_id: Any) -> SenderRights:
    rows = list(ApiToken.objects.filter(pk=token_id).values_list("team_id", "all_teams", "extra_teams"))
    if not rows:
        return SenderRights(everything=False)
    if rows[0][1]:
        return EVERYTHING
    return SenderRights(everything=False, team_ids=frozenset({rows[0][0], *(extra for _, _, extra in rows if extra is not None)}))


def _user_rights(user: Any) -> SenderRights:
    ids = triage_team_ids(user)
    return EVERYTHING if ids is None else SenderRights(everything=False, team_ids=frozenset(ids))


def own_image_items(items: Iterable[Any], images: Mapping[str, Any], rights: SenderRights) -> list[Any]:
    """The report's items about images the sender may speak for: a sighting of another team's image ("it runs")
    would raise the risk scores of that team's findings."""
    return [item for item in items if item.image is None or rights.may_change(getattr(images.get(item.image.name), "team_id", None))]
