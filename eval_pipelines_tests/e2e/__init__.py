"""End-to-end tests of the production profile: real PostgreSQL, ``dagster api grpc``, ``dagster-daemon`` and
``dagster-webserver`` as separate processes, the landing sensor and automation driving the whole chain, and the UI
in headless Chromium. Marked ``e2e`` and opt-in: ``pytest -m e2e eval_pipelines_tests/e2e`` (``make e2e``) runs
them, a plain ``pytest`` leaves them out (conftest.py). They take minutes, not seconds.
"""
