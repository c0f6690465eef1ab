"""The base-image roll-up: open OS-package findings grouped by the base image they come from.

What Vigil knows, per OS-package finding of a Trivy scan (``details``): the result's target, which names the
image's OS (``repo:tag (alpine 3.9.4)``, from Trivy's ``Metadata.OS``), and the DiffID of the layer that installed
the package (``Layer.DiffID``).  A DiffID is the hash of a layer's uncompressed content, so two images whose
findings name the same DiffID were built on the same layer: a layer that findings of two or more images name is a
*base layer*, and an image's base is its OS release plus the set of its base layers.  Images with the same base
form one group; its findings are theirs that sit in those layers.  An image alone on its base cannot be told
apart from its own layers (Vigil does not know where a lone image's base ends), so it forms no group.

What moving fixes: Trivy's fixed version of an OS package is the one published for that OS *release* (alpine
3.9, debian 10: the distribution's security updates), so rebuilding on the newest image of the same release
fixes exactly the group's findings that have a fixed version.  For the others no fix is published in that
release; a newer release may fix them, but Vigil cannot know, and says so.

Only what the caller may read is used, to find base layers as well as to count (another team's images never
shape what someone sees).  The counts are those the hourly snapshot task stored (services/base_image_counts.py;
the pages say when): three queries, the stored counts, then the images and teams they name, none on findings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils.http import urlencode

from dashboard.models import ACTIVE_STATUSES, SEVERITY_ORDER, BaseLayerCount, Finding, Image, Team
from dashboard.models.access import visible_team_filter
from dashboard.selectors.findings import os_package_q

#: ``registry/repo:tag (debian 10.2)``: the OS Trivy detected, at the end of an OS-package result's target.
_OS_IN_TARGET = re.compile(r"\((?P<family>[a-z][a-z0-9._-]*) (?P<version>[0-9][0-9A-Za-z._+~-]*)\)\s*$")
#: Families whose releases are named by major.minor (alpine 3.9.x is the 3.9 branch); the others use the major
#: version (debian 10.x, rhel 8.x), ubuntu its full version (22.04).
_MINOR_RELEASES = {"alpine", "photon", "opensuse.leap", "suse linux enterprise server", "wolfi"}
_FULL_RELEASES = {"ubuntu"}


@functools.lru_cache(maxsize=4096)  # one target per image and tag: the same few thousand strings on every request
def os_of_target(target: str) -> tuple[str, str] | None:
    """(family, version) of an OS-package result's target, or None when it names no OS."""
    match = _OS_IN_TARGET.search(target or "")
    return (match.group("family"), match.group("version")) if match else None


def release_of(family: str, version: str) -> str:
    """The release a version belongs to, whose security updates Trivy's fixed versions come from."""
    if family in _FULL_RELEASES:
        return version
    parts = version.split(".")
    return ".".join(parts[:2]) if family in _MINOR_RELEASES else parts[0]


@dataclasses.dataclass
class TeamShare:
    """One owning team's part of a group: what to route to it, and the queue link to exactly those findings."""

    team: Team | None
    images: list[Image]
    findings: int = 0
    fixable: int = 0
    #: The queue's query string for exactly these findings (filled once the group is complete).
    query: str = ""

    @property
    def slug(self) -> str:
        return self.team.slug if self.team is not None else "unowned"

    @property
    def name(self) -> str:
        return self.team.name if self.team is not None else "Unowned"


@dataclasses.dataclass
class BaseGroup:
    os_family: str
    os_version: str
    layers: tuple[str, ...]
    images: list[Image] = dataclasses.field(default_factory=list)
    shares: list[TeamShare] = dataclasses.field(default_factory=list)
    by_severity: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SEVERITY_ORDER, 0))
    findings: int = 0
    fixable: int = 0
    #: Images and teams with at least one finding that moving fixes.
    fixable_images: int = 0
    fixable_teams: int = 0

    @property
    def key(self) -> str:
        digest = hashlib.sha256(",".join(self.layers).encode()).hexdigest()[:12]
        return f"{self.os_family}-{self.os_version}-{digest}"

    @property
    def name(self) -> str:
        """X: the OS release and the base layers (short DiffIDs), since the scan names no base image."""
        short = ", ".join(layer.removeprefix("sha256:")[:12] for layer in self.layers)
        noun = "layer" if len(self.layers) == 1 else "layers"
        return f"{self.os_family} {self.os_version} (base {noun} {short})"

    @property
    def target(self) -> str:
        """Y: the newest image of the same OS release."""
        return f"the newest {self.os_family} {release_of(self.os_family, self.os_version)} image"

    @property
    def teams(self) -> int:
        return len(self.shares)

    @property
    def summary(self) -> str:
        release = f"{self.os_family} {release_of(self.os_family, self.os_version)}"
        if not self.fixable:
            return f"{_n(self.findings, 'finding')} come from base {self.name}; fixes available for 0 of them in {release}."
        text = (
            f"Moving base image {self.name} to {self.target} fixes {_n(self.fixable, 'finding')} "
            f"in {_n(self.fixable_images, 'image')} of {_n(self.fixable_teams, 'team')}."
        )
        rest = self.findings - self.fixable
        if rest:
            text += f" {_n(rest, 'more finding')} from this base {'has' if rest == 1 else 'have'} no fix published for {release}."
        return text


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def live_rows(findings: QuerySet[Finding]) -> list[dict[str, Any]]:
    """The definition: active OS-package findings with a layer, counted per image, team, target, layer and
    severity (one aggregate over the findings; the hourly refresh stores what it gives)."""
    rows = (
        findings.filter(os_package_q(), status__in=ACTIVE_STATUSES, image__isnull=False, details__layer_diff_id__isnull=False)
        .exclude(details__layer_diff_id="")
        .annotate(layer=KeyTextTransform("layer_diff_id", "details"), target=KeyTextTransform("target", "details"))
        .order_by()  # the model's ordering must not join the GROUP BY
        .values("image_id", "team_id", "target", "layer", "severity")
        .annotate(n=Count("id"), fixable=Count("id", filter=~Q(fixed_version="")))
    )
    return [dict(row) for row in rows]


def stored_rows(user: Any) -> list[dict[str, Any]]:
    """The same rows as stored by the last hourly refresh, of the teams the user may read (no findings read)."""
    rows = BaseLayerCount.objects.all()
    scope = visible_team_filter(user)
    if scope is not None:
        rows = rows.filter(**scope)
    return [dict(row) for row in rows.values("image_id", "team_id", "target", "layer", "severity", "n", "fixable")]


def counted_at() -> dt.datetime | None:
    """When the stored rows were counted (None: not yet), for the pages to say how fresh they are."""
    return BaseLayerCount.objects.order_by().aggregate(at=Max("counted_at"))["at"]


def base_image_groups(*, user: Any, live: bool = False) -> list[BaseGroup]:
    """Every base shared by two or more images the user may see, largest first: from the hourly counts, or
    (``live``) counted from the findings now."""
    counted = live_rows(Finding.objects.visible_to(user)) if live else stored_rows(user)
    rows = [row for row in counted if os_of_target(row["target"] or "")]
    image_os: dict[int, Counter[tuple[str, str]]] = defaultdict(Counter)
    image_layers: dict[int, set[str]] = defaultdict(set)
    layer_images: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        image_os[row["image_id"]][os_of_target(row["target"]) or ("", "")] += row["n"]
        image_layers[row["image_id"]].add(row["layer"])
        layer_images[row["layer"]].add(row["image_id"])
    shared = {layer for layer, images in layer_images.items() if len(images) >= 2}
    base_of: dict[int, tuple[str, str, tuple[str, ...]]] = {}
    for image_id, layers in image_layers.items():
        if layers & shared:
            # An image scanned on two releases over time: the OS most of its open findings name.
            family, version = image_os[image_id].most_common(1)[0][0]
            base_of[image_id] = (family, version, tuple(sorted(layers & shared)))
    return _assemble([row for row in rows if row["image_id"] in base_of and row["layer"] in base_of[row["image_id"]][2]], base_of)


def _assemble(rows: list[dict[str, Any]], base_of: dict[int, tuple[str, str, tuple[str, ...]]]) -> list[BaseGroup]:
    images = Image.objects.only("registry", "repository").in_bulk(list(base_of))
    teams = Team.objects.only("slug", "name").in_bulk([row["team_id"] for row in rows if row["team_id"] is not None])
    groups: dict[tuple[str, str, tuple[str, ...]], BaseGroup] = {}
    shares: dict[tuple[tuple[str, str, tuple[str, ...]], int | None], TeamShare] = {}
    fixable_in: dict[tuple[str, str, tuple[str, ...]], set[tuple[int, int | None]]] = defaultdict(set)
    listed: set[tuple[Any, ...]] = set()
    for row in sorted(rows, key=lambda r: (images[r["image_id"]].name, r["layer"], r["severity"])):
        key = base_of[row["image_id"]]
        group = groups.setdefault(key, BaseGroup(os_family=key[0], os_version=key[1], layers=key[2]))
        image = images[row["image_id"]]
        if (key, image.pk) not in listed:
            listed.add((key, image.pk))
            group.images.append(image)
        share = shares.get((key, row["team_id"]))
        if share is None:
            share = shares[(key, row["team_id"])] = TeamShare(team=teams.get(row["team_id"]), images=[])
            group.shares.append(share)
        if (key, row["team_id"], image.pk) not in listed:
            listed.add((key, row["team_id"], image.pk))
            share.images.append(image)
        for part in (group, share):
            part.findings += row["n"]
            part.fixable += row["fixable"]
        group.by_severity[row["severity"]] = group.by_severity.get(row["severity"], 0) + row["n"]
        if row["fixable"]:
            fixable_in[key].add((row["image_id"], row["team_id"]))
    for key, group in groups.items():
        group.fixable_images = len({image for image, _ in fixable_in[key]})
        group.fixable_teams = len({team for _, team in fixable_in[key]})
        group.shares.sort(key=lambda share: (-share.findings, share.name))
        for share in group.shares:
            share.query = urlencode(share_query(group, share))
    return sorted(groups.values(), key=lambda g: (-g.fixable, -g.findings, g.name))


def share_query(group: BaseGroup, share: TeamShare) -> dict[str, str]:
    """The queue's filters for exactly the team's findings of the group."""
    return {
        "team": share.slug,
        "image": ",".join(str(image.pk) for image in share.images),
        "base_layer": ",".join(group.layers),
        "status": "active",
    }


def groups_as_rows(groups: Iterable[BaseGroup]) -> list[dict[str, Any]]:
    """One flat row per group and owning team (the CSV export and tables)."""
    return [
        {
            "base": group.name,
            "os": f"{group.os_family} {group.os_version}",
            "move_to": group.target,
            "layers": " ".join(group.layers),
            "team": share.slug,
            "images": " ".join(image.name for image in share.images),
            "findings": share.findings,
            "fixable": share.fixable,
        }
        for group in groups
        for share in group.shares
    ]
