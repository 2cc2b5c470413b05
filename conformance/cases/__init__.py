"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import auth_services, dc_power_stop, sap_session  # noqa: F401
