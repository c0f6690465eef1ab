"""Threat intelligence (CISA KEV, FIRST EPSS) and re-scoring findings in bulk.

``findings_rescore`` is the one place a finding's KEV/EPSS facts, exposure,
risk score and SLA due date are computed from the database; imports and ingest
call it with batches of ids.  Queries are constant per batch, never per finding.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import json
import logging
import re
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.db.update_values import bulk_update_rows
from dashboard.errors import ApplicationError
from dashboard.models import EpssScore, Finding, KevEntry, Stream, Team
from dashboard.selectors.running import Version, finding_versions, is_running, running_since, running_versions
from dashboard.services import risk

logger = logging.getLogger(__name__)

BATCH = 1000
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
#: The fields re-scoring reads and writes.
_READ = (
    "id",
    "rule_id",
    "severity",
    "cvss",
    "fixed_version",
    "image_id",
    "stream",
    "team_id",
    "status",
    "first_seen",
    "last_seen",
    "sla_started_on",
    "kev",
    "kev_due_date",
    "epss",
    "epss_percentile",
    "exposed",
    "risk_parts",
    "risk_score",
    "due_date",
)
_WRITTEN = ["kev", "kev_due_date", "epss", "epss_percentile", "exposed", "risk_parts", "risk_score", "due_date"]


@dataclasses.dataclass
class ImportResult:
    entries: int
    removed: int
    findings_rescored: int

    def summary(self, what: str) -> str:
        removed = f", {self.removed} removed" if self.removed else ""
        plural = "" if self.findings_rescored == 1 else "s"
        return f"imported {self.entries} {what}{removed}; {self.findings_rescored} finding{plural} re-scored"


def _chunks(values: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def cve_of(rule_id: str) -> str | None:
    value = rule_id.strip().upper()
    return value if CVE_RE.match(value) else None


# --- re-scoring ---------------------------------------------------------------------------------


def findings_rescore(*, ids: Iterable[int], today: dt.date | None = None) -> int:
    """Recompute KEV/EPSS facts, exposure, risk score and due date of these findings.

    Writes only findings whose values changed; returns how many changed.
    """
    today = today or timezone.localdate()
    ordered = sorted(set(ids))
    teams: dict[int, dict[str, int]] = {}
    changed = 0
    for chunk in _chunks(ordered):
        changed += _rescore(_load(chunk), teams)
    return changed


def _load(ids: Sequence[int]) -> list[dict[str, Any]]:
    """The re-scored columns as plain values (model instances cost several times more to build)."""
    return list(Finding.objects.filter(pk__any=ids).order_by("id").values(*_READ))


@dataclasses.dataclass
class Facts:
    """What scoring knows beyond a finding's own columns: KEV and EPSS by CVE, the versions of images running now
    (selectors/running.py), SLA days per team.

    It grows: ``facts_for(..., facts=...)`` looks up only the CVEs and images not looked up before (ingest
    scores the new findings of a large report a thousand at a time)."""

    kev: dict[str, KevEntry]
    epss: dict[str, EpssScore]
    running: dict[int, set[Version]]
    teams: dict[int, dict[str, int]]
    cves_known: set[str] = dataclasses.field(default_factory=set)
    images_known: set[int] = dataclasses.field(default_factory=set)


def facts_for(
    *,
    rule_ids: Iterable[str],
    image_ids: Iterable[int | None],
    team_ids: Iterable[int | None],
    teams: dict[int, dict[str, int]] | None = None,
    facts: Facts | None = None,
) -> Facts:
    """The facts for scoring findings with these rule ids, images and teams (``teams``: SLA days already loaded;
    ``facts``: what earlier calls found, extended in place and returned)."""
    if facts is None:
        facts = Facts(kev={}, epss={}, running={}, teams={} if teams is None else teams)
    cves = {cve for cve in (cve_of(rule_id) for rule_id in rule_ids) if cve} - facts.cves_known
    if cves:
        wanted = sorted(cves)
        facts.kev.update({k.cve: k for k in KevEntry.objects.filter(cve__any=wanted).only("cve", "due_date")})
        facts.epss.update({e.cve: e for e in EpssScore.objects.filter(cve__any=wanted).only("cve", "epss", "percentile")})
        facts.cves_known |= cves
    images = {pk for pk in image_ids if pk} - facts.images_known
    if images:
        facts.running.update(running_versions(images))
        facts.images_known |= images
    missing = {pk for pk in team_ids if pk and pk not in facts.teams}
    if missing:
        facts.teams.update({pk: risk.sla_days_for(sla) for pk, sla in Team.objects.filter(pk__in=missing).values_list("id", "sla_days")})
    return facts


def scored(finding: dict[str, Any], facts: Facts, versions: Iterable[Version] = ()) -> dict[str, Any]:
    """The scoring columns (``_WRITTEN``) of a finding given as values: rule_id, severity, cvss, fixed_version,
    stream, image_id, team_id, sla_started_on, first_seen, last_seen.  Ingest scores new findings with it; re-scoring too.

    ``versions``: the image versions (tag, digest) the finding was seen in; it is "exposed" (running) when one of
    them runs now, or, for a runtime alert, while it alerted within VIGIL_RUNNING_DAYS."""
    cve = cve_of(finding["rule_id"])
    entry = facts.kev.get(cve) if cve else None
    score = facts.epss.get(cve) if cve else None
    values: dict[str, Any] = {
        "kev": entry is not None,
        "kev_due_date": entry.due_date if entry else None,
        "epss": score.epss if score else None,
        "epss_percentile": score.percentile if score else None,
        "exposed": (finding["stream"] == Stream.RUNTIME and finding["last_seen"] >= running_since())
        or is_running(versions, facts.running.get(finding["image_id"])),
    }
    parts = risk.risk_parts(
        severity=finding["severity"],
        cvss=finding["cvss"],
        epss=values["epss"],
        kev=values["kev"],
        fix_available=bool(finding["fixed_version"]),
        exposed=values["exposed"],
    )
    values["risk_parts"] = parts
    values["risk_score"] = risk.score_of(parts)
    start = finding["sla_started_on"] or finding["first_seen"].date()
    team_id = finding["team_id"]
    sla = facts.teams[team_id] if team_id and team_id in facts.teams else risk.sla_days_for(None)
    values["due_date"] = risk.due_date(severity=finding["severity"], start=start, sla_days=sla, kev_due=values["kev_due_date"])
    return values


def _rescore(findings: list[dict[str, Any]], teams: dict[int, dict[str, int]]) -> int:
    if not findings:
        return 0
    facts = facts_for(
        rule_ids=(f["rule_id"] for f in findings),
        image_ids=(f["image_id"] for f in findings),
        team_ids=(f["team_id"] for f in findings),
        teams=teams,
    )
    versions = finding_versions([f["id"] for f in findings if f["image_id"] in facts.running])
    dirty: list[Any] = []
    for finding in findings:
        values = scored(finding, facts, versions.get(finding["id"], ()))
        if any(finding[field] != value for field, value in values.items()):
            dirty.append(SimpleNamespace(pk=finding["id"], **values))
    if dirty:
        _write(dirty)
    return len(dirty)


def _write(findings: list[Any]) -> None:
    """Write the re-scored columns in one UPDATE ... FROM (VALUES ...) per batch."""
    bulk_update_rows(Finding, findings, _WRITTEN)


def _rescore_cves(cves: Sequence[str], teams: dict[int, dict[str, int]]) -> int:
    ids = list(Finding.objects.filter(rule_id__in=cves).order_by("id").values_list("id", flat=True))
    changed = 0
    for chunk in _chunks(ids):
        changed += _rescore(_load(chunk), teams)
    return changed


# --- CISA KEV -----------------------------------------------------------------------------------


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ApplicationError(f"{where}: {value!r} is not a date (YYYY-MM-DD)", code="invalid_kev") from None


def _kev_entries(data: bytes, now: dt.datetime) -> list[KevEntry]:
    try:
        document = json.loads(_maybe_gunzip(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"not JSON: {exc}", code="invalid_kev") from exc
    if not isinstance(document, dict) or not isinstance(document.get("vulnerabilities"), list):
        raise ApplicationError('not a CISA KEV catalogue: expected {"vulnerabilities": [...]}', code="invalid_kev")
    entries: dict[str, KevEntry] = {}
    for index, item in enumerate(document["vulnerabilities"]):
        where = f"vulnerabilities[{index}]"
        if not isinstance(item, dict):
            raise ApplicationError(f"{where} is not an object", code="invalid_kev")
        cve = cve_of(str(item.get("cveID") or ""))
        if cve is None:
            raise ApplicationError(f"{where}: cveID {item.get('cveID')!r} is not a CVE id", code="invalid_kev")
        entries[cve] = KevEntry(
            cve=cve,
            vendor_project=str(item.get("vendorProject") or "")[:255],
            product=str(item.get("product") or "")[:255],
            name=str(item.get("vulnerabilityName") or "")[:500],
            date_added=_date(item.get("dateAdded"), f"{where}.dateAdded"),
            due_date=_date(item.get("dueDate"), f"{where}.dueDate"),
            required_action=str(item.get("requiredAction") or "")[:5000],
            known_ransomware=str(item.get("knownRansomwareCampaignUse") or "")[:32],
            imported_at=now,
        )
    return list(entries.values())


@transaction.atomic
def kev_import(*, data: bytes) -> ImportResult:
    """Replace the KEV catalogue with this one (CISA's JSON feed) and re-score affected findings."""
    now = timezone.now()
    entries = _kev_entries(data, now)
    cves = sorted(entry.cve for entry in entries)
    for chunk in _chunks(entries):
        KevEntry.objects.bulk_create(
            chunk,
            update_conflicts=True,
            unique_fields=["cve"],
            update_fields=[
                "vendor_project",
                "product",
                "name",
                "date_added",
                "due_date",
                "required_action",
                "known_ransomware",
                "imported_at",
            ],
        )
    gone = list(KevEntry.objects.filter(imported_at__lt=now).values_list("cve", flat=True))
    KevEntry.objects.filter(imported_at__lt=now).delete()
    teams: dict[int, dict[str, int]] = {}
    rescored = 0
    for chunk in _chunks([*cves, *gone]):
        rescored += _rescore_cves(chunk, teams)
    return ImportResult(entries=len(entries), removed=len(gone), findings_rescored=rescored)


# --- FIRST EPSS ---------------------------------------------------------------------------------


def _maybe_gunzip(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ApplicationError(f"not valid gzip: {exc}", code="invalid_file") from exc
    return data


def _epss_rows(text: str) -> tuple[dict[str, str], Iterator[tuple[int, list[str]]]]:
    """The ``#model_version:...,score_date:...`` metadata and the data rows with their line numbers."""
    lines = io.StringIO(text)
    meta: dict[str, str] = {}
    line_no = 0
    header: list[str] | None = None
    reader = csv.reader(lines)
    for row in reader:
        line_no += 1
        if not row or not "".join(row).strip():
            continue
        if row[0].startswith("#"):
            for part in ",".join(row).lstrip("#").split(","):
                key, _, value = part.partition(":")
                meta[key.strip()] = value.strip()
            continue
        header = [cell.strip().lower() for cell in row]
        break
    if header is None or header[:3] != ["cve", "epss", "percentile"]:
        raise ApplicationError(f"line {line_no}: expected the header 'cve,epss,percentile' of FIRST's EPSS CSV", code="invalid_epss")
    start = line_no

    def rows() -> Iterator[tuple[int, list[str]]]:
        for offset, row in enumerate(reader, start=start + 1):
            if row and "".join(row).strip():
                yield offset, row

    return meta, rows()


def _score_date(meta: dict[str, str]) -> dt.date | None:
    value = meta.get("score_date", "")
    try:
        return dt.date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _epss_score(line: int, row: list[str], day: dt.date | None, model: str) -> EpssScore:
    if len(row) < 3:
        raise ApplicationError(f"line {line}: expected 3 columns cve,epss,percentile, got {len(row)}", code="invalid_epss")
    cve = cve_of(row[0])
    if cve is None:
        raise ApplicationError(f"line {line}: {row[0][:40]!r} is not a CVE id", code="invalid_epss")
    try:
        epss, percentile = float(row[1]), float(row[2])
    except ValueError:
        raise ApplicationError(f"line {line}: epss and percentile must be numbers", code="invalid_epss") from None
    if not (0.0 <= epss <= 1.0 and 0.0 <= percentile <= 1.0):
        raise ApplicationError(f"line {line}: epss and percentile must be between 0 and 1", code="invalid_epss")
    return EpssScore(cve=cve, epss=epss, percentile=percentile, date=day, model_version=model[:64])


@transaction.atomic
def epss_import(*, data: bytes, batch_size: int = 5000) -> ImportResult:
    """Upsert FIRST's daily EPSS scores (CSV, optionally gzipped) and re-score affected findings."""
    try:
        text = _maybe_gunzip(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"not UTF-8 text: {exc}", code="invalid_epss") from exc
    meta, rows = _epss_rows(text)
    day, model = _score_date(meta), meta.get("model_version", "")
    teams: dict[int, dict[str, int]] = {}
    total = rescored = 0
    batch: dict[str, EpssScore] = {}
    for line, row in rows:
        score = _epss_score(line, row, day, model)
        batch[score.cve] = score
        if len(batch) >= batch_size:
            rescored += _store_epss(list(batch.values()), teams)
            total += len(batch)
            batch = {}
    if batch:
        rescored += _store_epss(list(batch.values()), teams)
        total += len(batch)
    return ImportResult(entries=total, removed=0, findings_rescored=rescored)


def _store_epss(scores: list[EpssScore], teams: dict[int, dict[str, int]]) -> int:
    EpssScore.objects.bulk_create(
        scores,
        update_conflicts=True,
        unique_fields=["cve"],
        update_fields=["epss", "percentile", "date", "model_version"],
        batch_size=BATCH,
    )
    rescored = 0
    for chunk in _chunks(sorted(score.cve for score in scores)):
        rescored += _rescore_cves(chunk, teams)
    return rescored


# --- optional download on a schedule ------------------------------------------------------------


def _download(url: str) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise ApplicationError(f"refusing to download {url!r}: only http(s) URLs", code="invalid_url")
    request = urllib.request.Request(url, headers={"User-Agent": "vigil"})  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - scheme checked above
        return bytes(response.read(512 * 1024 * 1024))


def intel_refresh(*, kev_url: str | None = None, epss_url: str | None = None) -> dict[str, str]:
    """Download and import the KEV and EPSS files from VIGIL_KEV_URL / VIGIL_EPSS_URL (unset: skipped)."""
    kev_url = settings.VIGIL_KEV_URL if kev_url is None else kev_url
    epss_url = settings.VIGIL_EPSS_URL if epss_url is None else epss_url
    done: dict[str, str] = {}
    if kev_url:
        done["kev"] = kev_import(data=_download(kev_url)).summary("KEV entries")
    if epss_url:
        done["epss"] = epss_import(data=_download(epss_url)).summary("EPSS scores")
    return done
