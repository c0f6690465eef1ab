"""Vigil's report parsers: native tool output in, normalised findings out.

Pure Python; never imports Django or the dashboard.  See ``base.py`` for the
normalised finding and the parser interface, ``registry.py`` for the formats.
"""
