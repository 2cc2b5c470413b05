"""SUT endpoint parsing and the HTTP power probe / lab control clients."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conformance.sut import HttpControl, HttpProbe, SutEndpoint


def test_parse() -> None:
    s = SutEndpoint.parse("tcp://[::1]:15119")
    assert (s.host, s.port, s.tls) == ("::1", 15119, False)
    assert SutEndpoint.parse("tls://[fe80::1]:64000").tls
    assert SutEndpoint.parse("[::1]:1", tls=True, pki="/x").pki_dir is not None
    with pytest.raises(ValueError):
        SutEndpoint.parse("udp://[::1]:1")


def test_http_probe_and_control() -> None:
    seen: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"power_w": -5760.0, "contactors_closed": True}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/power"
    try:
        st = asyncio.run(HttpProbe(url).state("WMIT0001"))
        ok = asyncio.run(HttpControl(url).trigger("WMIT0001", "grid_outage"))
    finally:
        srv.shutdown()
    assert st is not None and st.power_w == -5760.0 and st.contactors_closed
    assert ok and seen == [{"evccid": "WMIT0001", "event": "grid_outage"}]
