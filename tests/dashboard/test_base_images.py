"""The base-image roll-up on real Trivy reports (tests/fixtures/trivy/), hand-checked, and who sees what of it.

Hand count from the reports:
- scheme_2_many_vulns.json (alpine 3.9.4): 3 OS-package CVEs, all in layer sha256:edd61588d126..., each with a
  fixed version (freetype medium, krb5-libs high, libbz2 critical). Scanned as payments/api and storefront/checkout.
- kubernetes.json (trivy k8s): redis-follower (gb-redis-follower:v2) and redis-leader (redis:6.0.5), both debian
  10.4, 5 OS-package CVEs each in layer sha256:13cb14c2acd3...; apt CVE-2020-27350 (medium) has a fix, the four
  low ones none. Both Platform's.
- alpine-310 (alpine 3.10.2) and fluentd (debian 10.2) are each alone on their layers: no group.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.http import QueryDict

from dashboard.models import BaseLayerCount, Finding, Role, Status, TokenScope
from dashboard.selectors.base_images import base_image_groups, os_of_target, release_of
from dashboard.selectors.findings import FindingFilters, finding_list
from dashboard.services.base_image_counts import base_image_counts_refresh
from dashboard.services.tokens import token_create
from dashboard.tasks import take_snapshots
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

ALPINE = "Moving base image alpine 3.9.4 (base layer edd61588d126) to the newest alpine 3.9 image fixes 3 findings in 1 image of 1 team."
DEBIAN = (
    "Moving base image debian 10.4 (base layer 13cb14c2acd3) to the newest debian 10 image fixes 2 findings in 2 images of 1 team."
    " 8 more findings from this base have no fix published for debian 10."
)


@pytest.fixture
def scanned():
    teams = {slug: TeamFactory(slug=slug, name=slug.title()) for slug in ("payments", "storefront", "platform")}
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image="registry.example.com/payments/api:1.2.0")
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="storefront", image="registry.example.com/storefront/checkout:1.0.0")
    ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments", image="registry.example.com/payments/old:1")
    ingest(fixture_bytes("trivy/trivy-golden_fluentd-image_os-and-ruby-gems.json"), team="storefront", image="r.example.com/sf/web:2")
    ingest(fixture_bytes("trivy/kubernetes.json"), team="platform")
    base_image_counts_refresh()
    return teams


def shares(group) -> list[tuple[str, list[str], int, int]]:
    return [(share.slug, [image.name for image in share.images], share.findings, share.fixable) for share in group.shares]


def test_images_on_a_shared_base_layer_are_grouped_with_what_moving_fixes(scanned, django_assert_max_num_queries) -> None:
    staff = UserFactory(is_staff=True)

    with django_assert_max_num_queries(3):
        groups = base_image_groups(user=staff)

    alpine, debian = groups
    assert (alpine.name, alpine.findings, alpine.fixable, alpine.fixable_images, alpine.fixable_teams) == (
        "alpine 3.9.4 (base layer edd61588d126)",
        6,
        6,
        2,
        2,
    )
    assert alpine.by_severity == {"critical": 2, "high": 2, "medium": 2, "low": 0, "info": 0, "unknown": 0}
    assert shares(alpine) == [
        ("payments", ["registry.example.com/payments/api"], 3, 3),
        ("storefront", ["registry.example.com/storefront/checkout"], 3, 3),
    ]
    assert alpine.summary == ALPINE.replace("3 findings in 1 image of 1 team", "6 findings in 2 images of 2 teams")
    assert (debian.findings, debian.fixable, debian.by_severity["medium"], debian.by_severity["low"]) == (10, 2, 2, 8)
    assert shares(debian) == [("platform", ["docker.io/library/redis", "gcr.io/google_samples/gb-redis-follower"], 10, 2)]
    assert debian.summary == DEBIAN


def test_each_teams_queue_link_lists_exactly_its_findings_from_the_base(scanned) -> None:
    staff = UserFactory(is_staff=True)
    alpine, debian = base_image_groups(user=staff)

    for group in (alpine, debian):
        for share in group.shares:
            found = finding_list(user=staff, filters=FindingFilters.from_query(QueryDict(share.query)))
            assert found.count() == share.findings
            assert {f.image.name for f in found} == {image.name for image in share.images}
            assert {f.details["layer_diff_id"] for f in found} == set(group.layers)
            assert {f.details["class"] for f in found} == {"os-pkgs"}


def test_a_manager_sees_only_the_bases_shared_inside_their_teams(scanned) -> None:
    manager = MembershipFactory(team=scanned["platform"], role=Role.MANAGER).user
    MembershipFactory(user=manager, team=scanned["storefront"], role=Role.MANAGER)

    groups = base_image_groups(user=manager)

    # storefront/checkout's alpine base is shared only with a Payments image, which this manager cannot see.
    redis = ["docker.io/library/redis", "gcr.io/google_samples/gb-redis-follower"]
    assert [(group.name, shares(group)) for group in groups] == [("debian 10.4 (base layer 13cb14c2acd3)", [("platform", redis, 10, 2)])]


def test_a_champion_or_another_teams_manager_sees_nothing_of_other_teams(scanned, client) -> None:
    champion = MembershipFactory(team=scanned["payments"], role=Role.CHAMPION).user
    outsider = MembershipFactory(team=TeamFactory(slug="mobile"), role=Role.MANAGER).user

    assert base_image_groups(user=champion) == []
    client.force_login(outsider)
    page = client.get("/base-images/")
    download = client.get("/base-images/export.csv")
    api = client.get("/api/v1/base-images/")

    assert page.status_code == 200
    assert list(page.context["groups"]) == []
    assert "edd61588d126" not in page.content.decode()
    assert list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode()))) == [
        ["base", "os", "move_to", "layers", "team", "images", "findings", "fixable"]
    ]
    assert api.json()["results"] == []


def test_the_page_routes_each_group_to_its_owners_with_queue_links(scanned, client) -> None:
    manager = MembershipFactory(team=scanned["payments"], role=Role.MANAGER).user
    MembershipFactory(user=manager, team=scanned["storefront"], role=Role.MANAGER)
    client.force_login(manager)

    html = client.get("/base-images/").content.decode()

    assert ALPINE.replace("3 findings in 1 image of 1 team", "6 findings in 2 images of 2 teams") in html
    assert "debian 10.4" not in html
    assert html.count("base_layer=sha256%3Aedd61588d126") == 2


def test_the_csv_has_one_row_per_group_and_owning_team(scanned, client) -> None:
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/base-images/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert [(row["os"], row["team"], row["images"], row["findings"], row["fixable"]) for row in rows] == [
        ("alpine 3.9.4", "payments", "registry.example.com/payments/api", "3", "3"),
        ("alpine 3.9.4", "storefront", "registry.example.com/storefront/checkout", "3", "3"),
        ("debian 10.4", "platform", "docker.io/library/redis gcr.io/google_samples/gb-redis-follower", "10", "2"),
    ]
    assert rows[0]["move_to"] == "the newest alpine 3.9 image"


def test_the_api_answers_a_read_token_for_its_teams_only(scanned, client) -> None:
    _, read = token_create(team=scanned["platform"], name="read", scope=TokenScope.READ)
    _, ingest_only = token_create(team=scanned["platform"], name="ci", scope=TokenScope.INGEST)

    body = client.get("/api/v1/base-images/", headers={"Authorization": f"Bearer {read}"}).json()

    (group,) = body["results"]
    assert {key: group[key] for key in ("name", "findings", "fixable", "fixable_images", "fixable_teams", "summary")} == {
        "name": "debian 10.4 (base layer 13cb14c2acd3)",
        "findings": 10,
        "fixable": 2,
        "fixable_images": 2,
        "fixable_teams": 1,
        "summary": DEBIAN,
    }
    assert group["os"] == {"family": "debian", "version": "10.4", "release": "10"}
    assert [(team["team"], team["findings"]) for team in group["teams"]] == [("platform", 10)]
    assert group["teams"][0]["queue"].startswith("http://testserver/findings/?team=platform&image=")
    assert client.get("/api/v1/base-images/", headers={"Authorization": f"Bearer {ingest_only}"}).status_code == 403
    assert client.get("/api/v1/base-images/").status_code == 401


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("docker.io/redis:6.0.5 (debian 10.4)", ("debian", "10.4")),
        ("teamdojo:latest (alpine 3.9.4)", ("alpine", "3.9.4")),
        ("app (ubuntu 22.04)", ("ubuntu", "22.04")),
        ("requirements.txt", None),
        ("", None),
    ],
)
def test_the_os_is_read_from_the_results_target(target: str, expected) -> None:
    assert os_of_target(target) == expected


@pytest.mark.parametrize(
    ("family", "version", "release"),
    [("alpine", "3.9.4", "3.9"), ("debian", "10.4", "10"), ("ubuntu", "22.04", "22.04"), ("redhat", "8.4", "8")],
)
def test_a_release_is_the_branch_whose_security_updates_trivy_names(family: str, version: str, release: str) -> None:
    assert release_of(family, version) == release


def test_the_base_layer_filter_keeps_only_well_formed_diff_ids() -> None:
    layer = "sha256:" + "a" * 64

    filters = FindingFilters.from_query(QueryDict(f"base_layer=evil,{layer},sha256:short,{layer}&image=3,7"))

    assert (filters.base_layer, filters.image) == (layer, "3,7")
    assert FindingFilters.from_query(QueryDict("base_layer=" + ",".join([layer] * 30))).as_query() == {"base_layer": layer}


def summaries(groups) -> list[tuple]:
    return [(g.key, g.summary, g.by_severity, [i.name for i in g.images], shares(g), [s.query for s in g.shares]) for g in groups]


def test_the_hourly_counts_give_the_same_roll_up_as_counting_the_findings_now(scanned) -> None:
    staff, manager = UserFactory(is_staff=True), UserFactory()
    MembershipFactory(user=manager, team=scanned["platform"], role=Role.MANAGER)

    assert summaries(base_image_groups(user=staff)) == summaries(base_image_groups(user=staff, live=True))
    assert summaries(base_image_groups(user=manager)) == summaries(base_image_groups(user=manager, live=True))


def test_the_roll_up_reads_no_finding_and_changes_at_the_next_refresh(scanned, django_assert_max_num_queries) -> None:
    staff = UserFactory(is_staff=True)
    Finding.objects.filter(image__repository__in=["payments/api", "storefront/checkout"]).update(status=Status.FALSE_POSITIVE)

    with django_assert_max_num_queries(3) as captured:
        before = base_image_groups(user=staff)
    executed = [query["sql"] for query in captured.captured_queries]
    base_image_counts_refresh()
    after = base_image_groups(user=staff)

    assert not [sql for sql in executed if "dashboard_finding" in sql]
    assert [g.os_family for g in before] == ["alpine", "debian"]
    assert [g.os_family for g in after] == ["debian"]


def test_the_page_and_the_api_say_when_the_roll_up_was_counted(scanned, client) -> None:
    client.force_login(UserFactory(is_staff=True))

    html = client.get("/base-images/").content.decode()
    body = client.get("/api/v1/base-images/").json()

    assert "the snapshot task counts again every hour" in html
    assert body["counted_at"] is not None


def test_the_hourly_snapshot_task_counts_the_roll_up_again(scanned) -> None:
    staff = UserFactory(is_staff=True)
    BaseLayerCount.objects.all().delete()

    take_snapshots()

    assert [group.os_family for group in base_image_groups(user=staff)] == ["alpine", "debian"]
