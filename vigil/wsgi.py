import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
application = get_wsgi_application()

from dashboard.ingest.publish import load_transport  # noqa: E402  (needs the settings configured above)

# Import the URLconf (and every view module it imports) and the broker's transport when a web worker starts,
# rather than during the first request it serves: both are lazy, and took 0.38 s of the first report a fresh
# worker received.
_ = get_resolver().url_patterns
load_transport()
