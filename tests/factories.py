"""factory_boy factories for tests (never objects.create in tests)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.replace("-", " ").title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = models.Role.CHAMPION


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Image

    registry = "registry.example.com"
    repository = factory.Sequence(lambda n: f"team/app{n}")
    team = factory.SubFactory(TeamFactory)
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Finding

    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    team = factory.SubFactory(TeamFactory)
    image = factory.SubFactory(ImageFactory, team=factory.SelfAttribute("..team"))
    kind = models.Kind.VULNERABILITY
    source = "trivy"
    stream = models.Stream.SCAN
    scope_key = factory.LazyAttribute(lambda f: f"scan|trivy|image:{f.image.name}")
    rule_id = factory.Sequence(lambda n: f"CVE-2024-{1000 + n}")
    title = "A vulnerability"
    severity = models.Severity.HIGH
    package_name = "openssl"
    package_version = "1.1.1"
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)
    status_changed_at = factory.LazyFunction(timezone.now)
