"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import auth_services, charge_loop, dc_power_stop, sap_session, transport_tls_timing, wall_connector  # noqa: F401
