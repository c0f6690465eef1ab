"""Actors that are not people: Vigil itself acting on a rule an operator configured.

A ``SystemActor`` passes the administrators' check of the membership services and the triage
rights of ``findings_set_status`` (a tracker's signed webhook about its own ticket), is never a
logged-in user (``is_authenticated`` is False, so no view or API accepts it as a caller), and
is written to the audit log by name ("Vigil (single sign-on)"), so every change it makes says
which part of Vigil made it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SystemActor:
    #: What acts, as the audit log shows it: "single sign-on".
    name: str
    is_authenticated = False
    is_staff = False
    is_superuser = False
    api_token = None

    @property
    def label(self) -> str:
        return f"Vigil ({self.name})"


#: The identity provider's group mapping, re-applied at each single sign-on login.
SSO_ACTOR = SystemActor("single sign-on")
