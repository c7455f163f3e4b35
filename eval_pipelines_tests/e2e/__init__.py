"""End-to-end tests of the production profile: real PostgreSQL, ``dagster api grpc``, ``dagster-daemon`` and
``dagster-webserver`` as separate processes, the landing sensor and automation driving the whole chain, and the UI
in headless Chromium. Marked ``e2e`` (``pytest -m e2e``); they take minutes, not seconds.
"""
