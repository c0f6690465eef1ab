"""Colour-blind safe colours for every chart (Okabe-Ito, and Paul Tol's wine for critical).

Severities run dark to light so they also read in greyscale; streams get three Okabe-Ito colours.
"""

SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
SEVERITY_COLOURS = {
    "critical": "#882255",  # Tol wine
    "high": "#D55E00",  # Okabe-Ito vermillion
    "medium": "#E69F00",  # orange
    "low": "#0072B2",  # blue
    "info": "#56B4E9",  # sky blue
    "unknown": "#999999",  # grey
}
STREAM_COLOURS = {
    "scan": "#009E73",  # bluish green: caught in CI
    "admission": "#0072B2",  # blue: caught at deploy
    "runtime": "#D55E00",  # vermillion: caught in production
}
