"""Writes.  Every change to Vigil's data goes through a function in this package."""
