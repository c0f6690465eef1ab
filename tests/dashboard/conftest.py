"""Fixtures shared by the dashboard's tests."""

from tests.dashboard.tracker_receiver import tracker

__all__ = ["tracker"]
