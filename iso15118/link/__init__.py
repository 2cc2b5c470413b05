"""The link below the protocol: control pilot (IEC 61851-1) and SLAC (ISO 15118-3).

``pilot`` and ``slac`` are sans-IO cores (bytes and time in, frames, actions and deadlines
out); ``driver`` (AF_PACKET raw socket) and ``stack`` (one plug-in from SLAC to SessionStop on
an interface) are the asyncio layer above them and are never imported from below.
"""
