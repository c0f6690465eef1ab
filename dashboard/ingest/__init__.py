"""Ingestion: how one report travels from the POST to stored findings.  Read the modules in this order.

receive     ``receive.py``      ``report_submit``: validate the options, resolve the team, refuse a report about
                                nothing but other teams' findings (``scope_check.py``, 403 before anything is
                                stored), answer a duplicate delivery with the report it repeats.
                                ``signing.py`` checks a signed request (HMAC over the canonical request, one use).
store       ``receive.py``      ``_store`` / ``_insert``: the raw payload and the ``Report`` row are committed in one
                                statement (``dashboard/db/``) before the 202 goes out; nothing is lost after that.
publish     ``publish.py``      ``enqueue`` (in ``receive.py``) publishes the task after commit, through a kept
                                producer per thread: one per scan; for event reports one per burst of a sender's
                                alerts (``publish_unless_pending``: a Redis ``SET NX`` mark the task clears when it
                                starts).  ``report_sweep`` republishes what a lost message left queued or processing.
claim       ``claim.py``        ``report_process`` (a Celery task, ``dashboard/tasks.py``): claim the row
                                (queued -> processing, so a duplicate delivery changes nothing); ``repeat.py``
                                recognises the same scan again and records it without parsing.  ``events_process``
                                (the events queue's task): clear the sender's mark, then claim its queued event
                                reports in batches (``_claim_events``, SKIP LOCKED) until none is left.
parse       ``scanners/``       pure Python, no Django: ``scanners.registry`` detects the format, a parser turns
                                the document into a ``ParseResult`` of normalised findings; Trivy and Grype
                                read and check every entry but leave it pending, with a digest
                                (``scanners/entries.py``).
apply       ``apply.py``        ``apply_report``: a snapshot report (scans, policy reports) upserts its findings
                                by fingerprint and closes by absence only inside the scopes it covers
                                (``scopes.py``, locked per scope) and only what its sender may change
                                (``rights.py``).  ``apply_events.py``: event reports (Falco alerts, admission
                                denials) are applied as a batch that never closes anything, each report's
                                findings counted ``Report.occurrences`` times (Vigil's own repeats of an event:
                                ``services/admission_repeats.py``); ``quiet.py`` resolves them after a quiet period
                                (a beat task).  ``unchanged.py``: a re-scan's pending entries whose digest is
                                stored in their scope are applied without normalising.
write       ``write.py``        what a parsed finding becomes as a row (``new_row``, ``changed_values``), read and
                                written in chunks through ``dashboard/db/`` (COPY, ``UPDATE ... FROM (VALUES ...)``).

Each step imports only the steps after it (an import-linter contract in ``pyproject.toml``); SQL that is not
the ORM lives in ``dashboard/db/``.
"""
