"""The HTTP service (issue 3). `create_app(settings)` builds it; nothing
connects at import time."""
