"""A real OpenID Connect provider for the single sign-on tests: django-oauth-toolkit with OIDC on, run as its
own process with its own settings and SQLite database (``serve.py``)."""
