"""Reads.  Querysets for pages and the API, always scoped by Finding.objects.visible_to."""
