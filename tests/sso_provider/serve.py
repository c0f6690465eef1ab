"""Start the test identity provider: ``python -m tests.sso_provider.serve PORT`` with the OP_* environment.

Creates its database, one confidential client (``OP_CLIENT_ID``/``OP_CLIENT_SECRET``, redirect
``OP_REDIRECT_URI``) and a user per directory entry (password ``OP_PASSWORD``), then serves HTTP.
"""

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sso_provider.settings")
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    from tests.sso_provider.validators import directory

    call_command("migrate", verbosity=0)
    for username in directory():
        User.objects.create_user(username=username, password=os.environ["OP_PASSWORD"])
    Application.objects.create(
        name="Vigil",
        client_id=os.environ["OP_CLIENT_ID"],
        client_secret=os.environ["OP_CLIENT_SECRET"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=os.environ["OP_REDIRECT_URI"],
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    run("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main()
