"""A minimal packet recorder for when no tcpdump is installed: every frame seen on one
interface (both directions) into a libpcap file, until SIGTERM / SIGINT.

    python -m iso15118.link.sniff IFACE OUT.pcap

Prints ``SNIFFING`` once the socket is bound (so a caller knows capture has started).
"""

from __future__ import annotations

import select
import signal
import socket
import sys
import time

from iso15118.capture.pcapwriter import PcapWriter

ETH_P_ALL = 0x0003


def main(argv: list[str]) -> int:
    iface, out = argv[0], argv[1]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, ETH_P_ALL))
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with PcapWriter(out) as w:
        print("SNIFFING", flush=True)
        while not stop:
            r, _, _ = select.select([sock], [], [], 0.1)
            if r:
                data = sock.recv(65535)
                w.write(time.time(), data)
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
