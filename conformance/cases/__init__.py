"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import auth_services, charge_loop, dc_power_stop, sap_session, wall_connector  # noqa: F401
