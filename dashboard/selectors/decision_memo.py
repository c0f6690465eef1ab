"""Decisions kept per process while nothing they read has changed.

A CI gate call or an admission request for the same image again and again (every pod of a ReplicaSet, every
retry of a pipeline) would read the same namespace rules, policy, image and findings and decide the same thing.
``remembered`` reads, in one statement and *before* the inputs, the record PostgreSQL's triggers keep of every
change to them (dashboard/db/decision_changes.py: the global changes, and those of each image the references
name), and answers from what it kept only when that record is exactly the one it was kept under, on the same local
day (due dates and acceptances count in days) and for at most VIGIL_DECISION_MEMO_SECONDS (a bound, should a
change ever bypass the triggers: a TRUNCATE, a restored backup).  A false positive marked, an acceptance revoked,
a policy saved or a re-scan committed before the request adds a row, so the next decision reads its inputs again:
nothing is answered from inputs older than the last committed change.  Inputs read after the record can only be
newer than it, which costs one more read.  The training modules that teach a kept decision's reasons are kept
with it: they decide nothing, and a module added, or a finding's class changed, shows within two minutes (the
catalogue a process keeps a minute, selectors/training.module_picker, plus this memo's minute).

Only the decisions of Vigil itself (the admission webhook) and of tokens are kept: a token's teams are in the
record, a person's memberships are not.  On SQLite, with the setting at 0, every call computes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Collection, Hashable
from typing import Any, TypeVar

from django.conf import settings

from dashboard.db.decision_changes import Changes, changes_available, decision_changes
from scanners.base import ImageRef

T = TypeVar("T")

#: Entries kept per process, dropped all at once beyond it.
LIMIT = 4096


@dataclasses.dataclass(frozen=True)
class _Entry:
    value: Any
    changes: Changes
    day: dt.date
    until: float


#: Shared by the process's threads (dict reads and writes are atomic; a lost write costs one more read).
_entries: dict[Hashable, _Entry] = {}


def remembered(*, key: Hashable, by: Any, refs: Collection[str], day: dt.date, compute: Callable[[], T]) -> T:
    """``compute()`` (which reads only what the images of ``refs`` and the global inputs hold, as ``by`` may read
    them), or what it returned for ``key`` and ``by`` before, if nothing it reads has changed since and it is still
    ``day``.  ``by``: Vigil itself (None) or a token principal; a person's decisions are always computed."""
    seconds = settings.VIGIL_DECISION_MEMO_SECONDS
    who = _who(by)
    if seconds <= 0 or who is None or not changes_available():
        return compute()
    key = (who, key)
    parsed = [item for item in (ImageRef.parse(ref) for ref in refs) if item is not None]
    changes = decision_changes(registries={i.registry for i in parsed}, repositories={i.repository for i in parsed})
    clock = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry.changes == changes and entry.day == day and clock < entry.until:
        return entry.value  # type: ignore[no-any-return]
    value = compute()
    if len(_entries) >= LIMIT:
        _entries.clear()
    _entries[key] = _Entry(value=value, changes=changes, day=day, until=clock + seconds)
    return value


def _who(user: Any) -> Hashable | None:
    """Who a decision is for, as part of its key: Vigil itself (``user`` None) or a token; None for a person."""
    if user is None:
        return ("vigil",)
    token = getattr(user, "api_token", None)
    return ("token", token.pk) if token is not None else None


def forget_decisions() -> None:
    """Drop the kept decisions (the tests, between cases: their databases are rolled back or flushed)."""
    _entries.clear()
