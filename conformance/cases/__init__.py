"""Case modules; importing this package registers every case in the catalogue."""

from conformance.cases import (  # noqa: F401
    auth_services,
    charge_loop,
    dc_physical,
    dc_power_stop,
    evcc_cases,
    evcc_more,
    evcc_tls,
    link_pilot_slac,
    sap_session,
    transport_tls_timing,
    wall_connector,
)
