"""Liveness of the Celery worker and beat: a heartbeat file each touches from its own loop, checked by an exec probe.

No broker round trip (``celery inspect ping`` needs a healthy broker and costs a second of CPU per probe): the worker
touches its file from its event loop's timer, beat from every scheduler tick, so a process whose loop is stuck stops
touching it and the probe fails.  ``python -m vigil.liveness worker`` exits 0 while the file is fresh, 1 otherwise;
it imports neither Django nor Celery.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

#: How often the worker touches its file, in seconds.
HEARTBEAT_SECONDS = 10.0
#: The probe fails when the file is older than this (several missed heartbeats, not one slow one).
DEFAULT_MAX_AGE_SECONDS = 60.0
ROLES = ("worker", "beat")


def heartbeat_dir() -> Path:
    """VIGIL_HEARTBEAT_DIR, else heartbeat/ under VIGIL_VAR_DIR (a writable volume in the image and the manifests)."""
    configured = os.environ.get("VIGIL_HEARTBEAT_DIR")
    if configured:
        return Path(configured)
    var = os.environ.get("VIGIL_VAR_DIR") or str(Path(__file__).resolve().parent.parent / "var")
    return Path(var) / "heartbeat"


def heartbeat_path(role: str) -> Path:
    return heartbeat_dir() / f"{role}.alive"


def beat(role: str) -> None:
    """Touch ``role``'s heartbeat file (made with its folder on first use)."""
    path = heartbeat_path(role)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def forget(role: str) -> None:
    """Remove the heartbeat file (a stopped process is not alive)."""
    heartbeat_path(role).unlink(missing_ok=True)


def problem(role: str, *, max_age: float = DEFAULT_MAX_AGE_SECONDS, now: float | None = None) -> str:
    """Why ``role`` is not alive ("" when it is)."""
    path = heartbeat_path(role)
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat file {path}: the {role} has not started, or stopped"
    if age > max_age:
        return f"the {role}'s heartbeat {path} is {age:.0f} s old (more than {max_age:.0f} s)"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.liveness", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_SECONDS, help="seconds (default %(default)s)")
    args = parser.parse_args(argv)
    why = problem(args.role, max_age=args.max_age)
    if why:
        print(why, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
