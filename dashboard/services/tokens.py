"""API tokens: shown once, stored as a keyed hash, found in O(1) by a public prefix.

Format: ``vgl_`` + 10-character public prefix + 32-character secret + 6-character
CRC32 checksum (base62), so secret scanners can recognise leaked tokens and a
typo is caught before any database lookup.

Optional per token: an IP allow-list (CIDRs) and a request-signing secret.  The signing
secret is never stored: it is HMAC(TOKEN_HASH_KEY, random salt), so a copy of the database
alone cannot sign requests.  What a signature covers and how it is checked: ``dashboard/ingest/signing.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import zlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dashboard.db.token_lookup import token_with_team
from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, AuditEvent, Team, TokenAddress, TokenScope
from dashboard.selectors.access import ensure_administrator
from dashboard.services.audit import audit_record

TOKEN_PREFIX = "vgl_"  # noqa: S105 - the public token prefix, not a secret
SIGNING_PREFIX = "vgs_"  # prefix of request-signing secrets
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PUBLIC_LEN = 10
_SECRET_LEN = 32
_CHECK_LEN = 6
TOKEN_LENGTH = len(TOKEN_PREFIX) + _PUBLIC_LEN + _SECRET_LEN + _CHECK_LEN
#: Longest lifetime a token may be given in days (ten years); longer is what no_expiry is for.
TOKEN_MAX_DAYS = 3650


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    out = ""
    for _ in range(_CHECK_LEN):
        value, rem = divmod(value, 62)
        out = _ALPHABET[rem] + out
    return out


def _hash(token: str) -> str:
    return hmac.new(settings.TOKEN_HASH_KEY.encode(), token.encode(), hashlib.sha256).hexdigest()


def clean_cidrs(cidrs: Iterable[str]) -> list[str]:
    """Normalised networks (``10.0.0.0/8``, ``2001:db8::/32``, a bare address is a /32 or /128)."""
    out = []
    for raw in cidrs:
        text = raw.strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError as exc:
            raise ApplicationError(f"{text!r} is not an IP network (use CIDR notation like 10.0.0.0/8)", code="invalid_cidr") from exc
    return sorted(set(out))


_CLUSTER_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,253}[A-Za-z0-9])?")


def clean_cluster(name: str) -> str:
    """A cluster name as tokens and reports carry it ("" for none); refuses what no cluster is called."""
    text = (name or "").strip()
    if text and not _CLUSTER_NAME.fullmatch(text):
        raise ApplicationError(
            f"{text[:100]!r} is not a cluster name (letters, digits, '.', '_' and '-', at most 255)", code="invalid_cluster"
        )
    return text


def token_signing_secret(token: ApiToken) -> str:
    """The request-signing secret of a token (empty when it has none).  Derived, never stored."""
    if not token.signing_salt:
        return ""
    digest = hmac.new(settings.TOKEN_HASH_KEY.encode(), f"signing:{token.signing_salt}".encode(), hashlib.sha256).hexdigest()
    return SIGNING_PREFIX + digest


def _ids(token: ApiToken) -> dict[str, Any]:
    return {"prefix": token.prefix, "name": token.name, "scope": token.scope}


@transaction.atomic
def token_create(
    *,
    team: Team,
    name: str,
    scope: str = TokenScope.INGEST,
    created_by: User | None = None,
    days: int | None = None,
    extra_teams: Iterable[Team] = (),
    allowed_cidrs: Iterable[str] = (),
    signing: bool = False,
    ip: str | None = None,
    rotated_from: ApiToken | None = None,
    no_expiry: bool = False,
    all_teams: bool = False,
    cluster: str = "",
) -> tuple[ApiToken, str]:
    """Create a token; returns the record and the plaintext, which is never stored.

    Every token expires: after ``days`` (1 to TOKEN_MAX_DAYS; default VIGIL_TOKEN_DAYS), unless an
    administrator asks for ``no_expiry``, which the audit record says.
    ``all_teams`` grants organisation-wide ingest (its reports may change every team's findings): for a
    platform team's scanner; the grant is recorded in the audit log with the token.

    ``extra_teams`` makes an integration token covering several teams; ``allowed_cidrs``
    limits where it may be used from; ``signing`` gives it a request-signing secret
    (``token_signing_secret``) that every request must then be signed with; ``cluster`` binds it to one
    cluster (what it reports and asks about is that cluster's, and it may not name another).
    """
    ensure_administrator(created_by, "create tokens")
    _check_grant(name=name, scope=scope, all_teams=all_teams)
    expires_at = _expiry(days=days, no_expiry=no_expiry, created_by=created_by)
    cidrs = clean_cidrs(allowed_cidrs)
    cluster = clean_cluster(cluster)
    public, plaintext = _new_plaintext()
    token = ApiToken.objects.create(
        team=team,
        name=name.strip()[:100],
        prefix=public,
        key_hash=_hash(plaintext),
        scope=scope,
        allowed_cidrs=cidrs,
        cluster=cluster,
        signing_salt=secrets.token_hex(16) if signing else "",
        rotated_from=rotated_from,
        all_teams=all_teams,
        created_by=created_by,
        expires_at=expires_at,
    )
    extra = [other for other in extra_teams if other.pk != team.pk]
    if extra:
        token.extra_teams.set(extra)
    _audit_created(token, extra=extra, actor=created_by, ip=ip, signing=signing)
    return token, plaintext


def _check_grant(*, name: str, scope: str, all_teams: bool) -> None:
    if scope not in TokenScope.values:
        raise ApplicationError(f"unknown scope {scope!r}; use one of {', '.join(TokenScope.values)}")
    if not name.strip():
        raise ApplicationError("a token needs a name")
    if all_teams and scope == TokenScope.READ:
        raise ApplicationError("organisation-wide ingest is for a token that posts reports: scope ingest or admin", code="invalid_grant")


def _new_plaintext() -> tuple[str, str]:
    """``(public prefix, plaintext token)`` of a new random token."""
    public = _random(_PUBLIC_LEN)
    body = TOKEN_PREFIX + public + _random(_SECRET_LEN)
    return public, body + _checksum(body)


def _audit_created(token: ApiToken, *, extra: list[Team], actor: User | None, ip: str | None, signing: bool) -> None:
    """The audit record of a new token: every grant it carries, in the summary and the details."""
    team, scope, expires_at = token.team, token.scope, token.expires_at
    audit_record(
        action=AuditEvent.Action.TOKEN_CREATED,
        actor=actor,
        ip=ip,
        team=team,
        target=token,
        target_id=token.prefix,
        summary=f"token {token.name} ({token.prefix}) created with scope {scope} for {team.slug}"
        + (f" and {', '.join(sorted(t.slug for t in extra))}" if extra else "")
        + (" that never expires" if expires_at is None else "")
        + (", with organisation-wide ingest (its reports may change every team's findings)" if token.all_teams else ""),
        details={
            **_ids(token),
            "expires_at": expires_at.isoformat() if expires_at else None,
            "extra_teams": sorted(t.slug for t in extra),
            "allowed_cidrs": token.allowed_cidrs,
            "signed": signing,
            "no_expiry": expires_at is None,
            "all_teams": token.all_teams,
            "cluster": token.cluster,
        },
    )


def _expiry(*, days: int | None, no_expiry: bool, created_by: User | None) -> datetime | None:
    """When a new token expires; None only for an administrator's explicit ``no_expiry``."""
    if no_expiry:
        if days is not None:
            raise ApplicationError("give either a lifetime in days or no expiry, not both", code="invalid_expiry")
        if created_by is not None and not created_by.is_superuser:
            raise ApplicationError("only administrators may create a token that never expires", code="invalid_expiry", status=403)
        return None
    lifetime = settings.VIGIL_TOKEN_DAYS if days is None else days
    if not 1 <= lifetime <= TOKEN_MAX_DAYS:
        where = "VIGIL_TOKEN_DAYS" if days is None else "the lifetime"
        raise ApplicationError(
            f"{where} must be 1 to {TOKEN_MAX_DAYS} days, not {lifetime}: every token expires "
            "(an administrator can create one that never expires with --no-expiry, which is audited)",
            code="invalid_expiry",
        )
    return timezone.now() + timedelta(days=lifetime)


def token_authenticate(plaintext: str) -> ApiToken | None:
    """The active token for this plaintext, or None.  One indexed lookup, constant-time compare."""
    if len(plaintext) != TOKEN_LENGTH or not plaintext.startswith(TOKEN_PREFIX):
        return None
    body, check = plaintext[:-_CHECK_LEN], plaintext[-_CHECK_LEN:]
    if not hmac.compare_digest(_checksum(body), check):
        return None
    public = plaintext[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _PUBLIC_LEN]
    token = token_with_team(public)
    if token is None or not hmac.compare_digest(token.key_hash, _hash(plaintext)) or not token.is_active:
        return None
    return token


def token_check_address(*, token: ApiToken, ip: str | None) -> None:
    """Refuse a token used from outside its allow-list (audited once an hour per address)."""
    if not token.allowed_cidrs:
        return
    address = ipaddress.ip_address(ip) if ip else None
    if address is None or not any(address in ipaddress.ip_network(cidr) for cidr in token.allowed_cidrs):
        _audit_refused_address(token, ip)
        raise ApplicationError(f"this token may not be used from {ip or 'an unknown address'}", code="address_not_allowed", status=403)


def token_note_use(*, token: ApiToken, ip: str | None) -> None:
    """After a request authenticated in full: note when and from where; audit each new address.

    Costs no query when the token was used from the same address within the last minute.
    """
    now = timezone.now()
    same_address = ip == token.last_used_ip
    if same_address and token.last_used_at is not None and now - token.last_used_at <= timedelta(minutes=1):
        return
    if ip and not same_address:
        _, created = TokenAddress.objects.get_or_create(token=token, ip=ip, defaults={"first_seen": now, "last_seen": now})
        if created:
            audit_record(
                action=AuditEvent.Action.TOKEN_NEW_IP,
                actor=token,
                ip=ip,
                team=token.team,
                target=token,
                target_id=token.prefix,
                summary=f"token {token.name} ({token.prefix}) used from a new address {ip}",
                details=_ids(token),
            )
        else:
            TokenAddress.objects.filter(token=token, ip=ip).update(last_seen=now)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip or token.last_used_ip)
    token.last_used_at = now
    token.last_used_ip = ip or token.last_used_ip


def _audit_refused_address(token: ApiToken, ip: str | None) -> None:
    """One audit record per token and address per hour, so a stolen token cannot flood the log."""
    since = timezone.now() - timedelta(hours=1)
    recent = AuditEvent.objects.filter(
        action=AuditEvent.Action.TOKEN_REFUSED_IP, target_type="apitoken", target_id=token.prefix, ip=ip, created_at__gte=since
    )
    if recent.exists():
        return
    audit_record(
        action=AuditEvent.Action.TOKEN_REFUSED_IP,
        actor=token,
        ip=ip,
        team=token.team,
        target=token,
        target_id=token.prefix,
        summary=f"token {token.name} ({token.prefix}) refused: {ip or 'unknown address'} is outside its allow-list",
        details={**_ids(token), "allowed_cidrs": token.allowed_cidrs},
    )


@transaction.atomic
def token_revoke(*, token: ApiToken, by: User | None = None, ip: str | None = None, reason: str = "") -> ApiToken:
    ensure_administrator(by, "revoke tokens")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditEvent.Action.TOKEN_REVOKED,
            actor=by,
            ip=ip,
            team=token.team,
            target=token,
            target_id=token.prefix,
            summary=f"token {token.name} ({token.prefix}) revoked",
            reason=reason,
            details=_ids(token),
        )
    return token


@transaction.atomic
def token_rotate(
    *, token: ApiToken, by: User | None = None, overlap_hours: int = 24, ip: str | None = None, reason: str = ""
) -> tuple[ApiToken, str]:
    """Issue a successor with the same teams, scope, allow-list and signing (a new secret);
    the old token keeps working for ``overlap_hours`` (both overlap while senders switch)."""
    ensure_administrator(by, "rotate tokens")
    if not token.is_active:
        raise ApplicationError("a revoked or expired token cannot be rotated: create a new one", code="inactive_token")
    if overlap_hours < 0:
        raise ApplicationError("the overlap cannot be negative", code="invalid_overlap")
    now = timezone.now()
    days = settings.VIGIL_TOKEN_DAYS
    successor, plaintext = token_create(
        team=token.team,
        name=token.name,
        scope=token.scope,
        created_by=by,
        days=days,
        extra_teams=list(token.extra_teams.all()),
        allowed_cidrs=token.allowed_cidrs,
        signing=token.requires_signature,
        ip=ip,
        rotated_from=token,
        all_teams=token.all_teams,
        cluster=token.cluster,
    )
    ends = now + timedelta(hours=overlap_hours)
    if token.expires_at is None or token.expires_at > ends:
        token.expires_at = ends
        token.save(update_fields=["expires_at"])
    audit_record(
        action=AuditEvent.Action.TOKEN_ROTATED,
        actor=by,
        ip=ip,
        team=token.team,
        target=token,
        target_id=token.prefix,
        summary=f"token {token.name} ({token.prefix}) rotated to {successor.prefix}; the old one ends {token.expires_at:%Y-%m-%d %H:%M}",
        reason=reason,
        details={**_ids(token), "successor": successor.prefix, "old_expires_at": token.expires_at.isoformat()},
    )
    return successor, plaintext
