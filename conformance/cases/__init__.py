"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import sap_session  # noqa: F401
