"""The protocol's facts, in one place: what the session, the tester and the decoder all read.

=================  ===========================================================================
``payload``        V2GTP payload types, payload type <-> EXI schema key, namespace -> payload type
``namespaces``     SupportedAppProtocol namespaces, the energy families and their namespaces,
                   the schema keys of an AC/DC session, the protocol of a -2 / DIN namespace
``timing``         per protocol and message: V2G_EVCC_Msg_Timeout and
                   V2G_SECC_Msg_Performance_Time; sequence, setup and loop timers
``codes``          the -20 response codes (the generated ``responseCodeType`` enum) and
                   their classes (OK / WARNING / FAILED)
=================  ===========================================================================

Nothing here depends on a session, a socket or a clock: these modules sit just above the
typed messages and below transport, security, session, capture and conformance.

Import the submodule you need (``from iso15118.facts.timing import message_timing``): the
package itself imports nothing, so reading the payload-type table does not load the typed
messages that ``codes`` re-exports.
"""
