"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import auth_services, sap_session  # noqa: F401
