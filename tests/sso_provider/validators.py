"""Claims from the directory file the test writes: the provider's people and their groups, read at each token."""

import json
import os
from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator


def directory() -> dict[str, Any]:
    with open(os.environ["OP_DIRECTORY"], encoding="utf-8") as handle:
        return json.load(handle)


class DirectoryValidator(OAuth2Validator):
    #: Every claim in every token, whatever the scopes (the test client asks for all of them anyway).
    oidc_claim_scope = None

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        person = directory()[request.user.username]
        return {"preferred_username": request.user.username, "email": person["email"], "groups": person["groups"]}
