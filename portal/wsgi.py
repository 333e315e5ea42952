import os

from django.core.wsgi import get_wsgi_application

from portal.jsonlog import with_trace_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Log records emitted while a request is handled carry its Cloud Trace id.
application = with_trace_context(get_wsgi_application())
