from tests.oracle import oracle  # noqa: F401  (session fixture, re-exported for this package)
