"""A wrapper that delegates every attribute to the object it wraps: the base of the deliberately
defective chargers (``faults.py``) and vehicles (``evcc_defects.py``), which override only what
their defect changes."""

from __future__ import annotations

from typing import Any


class Delegating:
    """Delegates everything to ``inner`` (the simulated charger or vehicle)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
