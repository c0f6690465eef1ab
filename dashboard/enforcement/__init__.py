"""One decision for every point of enforcement (CI gate, admission webhook, runtime "would have been blocked").

``decision.py`` is pure (plain dataclasses in, a ``Decision`` out; no Django, no ORM): the points of
enforcement gather its inputs (dashboard/selectors/enforcement.py) and render its answer.
"""
