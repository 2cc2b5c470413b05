"""iso15118: an ISO 15118-20 protocol stack for bidirectional power transfer.

Packages, one per concern:
  exi        schema-informed EXI 1.0 codec driven by the official XSDs
  messages   typed ISO 15118-20 / SupportedAppProtocol messages
  transport  V2GTP framing, SDP discovery, asyncio TCP/TLS transports
  security   -20 PKI, TLS 1.3 contexts, XML signatures over EXI fragments
  session    sans-IO EVCC and SECC state machines
  sim        vehicle and charger simulators
  capture    pcap / pcapng decoder
"""

__version__ = "0.1.0"

# The optional compiled build of the capture pipeline (tools/build_native): used only while fresh.
from iso15118 import _native  # noqa: E402

_native.install()
