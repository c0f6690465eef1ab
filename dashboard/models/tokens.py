from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models.choices import TokenScope
from dashboard.models.teams import Team


class ApiToken(models.Model):
    """A machine credential bound to a team.  Only a keyed hash of the secret is stored.

    An integration token (a cluster-wide Falco or policy-reporter) also covers ``extra_teams``:
    it reads their findings and may name them with ``team=``; its own ``team`` is the one
    running the integration and the fallback owner of what no rule claims.

    ``all_teams`` is the organisation-wide ingest grant (a platform team's scanner): its reports may
    change the findings of every team, where other tokens change only those of the teams they cover.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tokens")
    extra_teams = models.ManyToManyField(Team, blank=True, related_name="integration_tokens")
    name = models.CharField(max_length=100)
    #: Public, unique part of the token used for O(1) lookup (shown in lists).
    prefix = models.CharField(max_length=16, unique=True)
    #: HMAC-SHA256 of the whole token, keyed by settings.TOKEN_HASH_KEY.
    key_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.INGEST)
    #: Organisation-wide ingest: reports sent with it may change any team's findings (granted and audited by token_create).
    all_teams = models.BooleanField(default=False)
    #: Networks the token may be used from (CIDRs, IPv4 or IPv6); empty means anywhere.
    allowed_cidrs = models.JSONField(default=list, blank=True)
    #: The cluster this token speaks for (empty: not bound; a report may then name one with ``cluster=``).
    cluster = models.CharField(max_length=255, blank=True, default="")
    #: Random salt of the request-signing secret (HMAC(TOKEN_HASH_KEY, salt)); empty: requests need no signature.
    signing_salt = models.CharField(max_length=64, blank=True, default="")
    #: The token this one replaced (rotation); both work until the old one's expiry.
    rotated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def requires_signature(self) -> bool:
        return bool(self.signing_salt)

    def team_ids(self) -> set[int]:
        """Every team this token covers: its own and, for an integration token, the extra ones."""
        cached: set[int] | None = getattr(self, "_team_ids", None)
        if cached is None:
            cached = {self.team_id, *(team.pk for team in self.extra_teams.all())}
            self._team_ids = cached
        return cached


class TokenAddress(models.Model):
    """An address a token was used from: a first use from a new address is audited."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="addresses")
    ip = models.GenericIPAddressField()
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "ip"], name="tokenaddress_token_ip_unique")]


class SignedRequest(models.Model):
    """A signature seen on a signed request, kept for the replay window: the same signature again is refused.

    No answer is kept: a replay is never answered, so no request can be given another one's answer.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64)
    timestamp = models.BigIntegerField()
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "signature"], name="signedrequest_token_signature_unique")]
