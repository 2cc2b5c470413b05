"""Helpers for the in-memory session tests: build pairs, script raw requests."""

from __future__ import annotations

from typing import Any

from iso15118 import messages as m
from iso15118.session import EvccConfig, EvccSession, SeccConfig, SeccSession, rules
from iso15118.session.events import SendMessage
from iso15118.session.memory import Transcript, run_pair
from iso15118.session.services import NS_AC, NS_DC
from iso15118.sim import make_ev, make_evse

EPOCH = 1_800_000_000


def clock() -> float:
    return EPOCH


def pair(
    ev_profile: str = "cybertruck-awd",
    evse_profile: str = "dc-bidi",
    *,
    ev_kwargs: dict[str, Any] | None = None,
    evse_kwargs: dict[str, Any] | None = None,
    evcc_config: EvccConfig | None = None,
    secc_config: SeccConfig | None = None,
) -> tuple[Any, Any, EvccSession, SeccSession]:
    ev = make_ev(ev_profile, **(ev_kwargs or {}))
    evse = make_evse(evse_profile, **(evse_kwargs or {}))
    evcc = EvccSession(ev, evcc_config or EvccConfig(), clock=clock)
    secc = SeccSession(evse, secc_config or SeccConfig(), clock=clock)
    return ev, evse, evcc, secc


def run(evcc: EvccSession, secc: SeccSession, **kwargs: Any) -> Transcript:
    kwargs.setdefault("max_time", 900.0)
    return run_pair(evcc, secc, **kwargs)


class Script:
    """Send hand-made requests to a SECC core and decode its answers."""

    def __init__(self, secc: SeccSession, now: float = 0.0) -> None:
        self.secc = secc
        self.now = now
        self.session_id = bytes(8)
        self.events: list[Any] = []

    def header(self, session_id: bytes | None = None) -> m.MessageHeader:
        return m.MessageHeader(session_id=self.session_id if session_id is None else session_id, time_stamp=EPOCH)

    def send(self, msg: Any, payload_type: int | None = None) -> Any:
        """Send ``msg``; returns the decoded response (or None if none was sent)."""
        name = msg.ELEMENT[1]
        spec = rules.spec_for_request(name)
        pt = payload_type if payload_type is not None else int(spec.payload_type) if spec else 0x8002
        self.now += 0.01
        events = self.secc.receive(pt, m.encode(msg), self.now)
        self.events += events
        sends = [e for e in events if isinstance(e, SendMessage)]
        if not sends:
            return None
        res = sends[0].message
        if name == "SessionSetupReq" and not res.response_code.value.startswith("FAILED"):
            self.session_id = res.header.session_id
        return res

    def sap(self, namespace: str = NS_DC) -> Any:
        return self.send(
            m.SupportedAppProtocolReq(
                app_protocol=[
                    m.AppProtocol(
                        protocol_namespace=namespace,
                        version_number_major=1,
                        version_number_minor=0,
                        schema_id=1,
                        priority=1,
                    )
                ]
            )
        )

    def setup(self, namespace: str = NS_DC) -> Any:
        self.sap(namespace)
        return self.send(m.SessionSetupReq(header=self.header(), evcc_id="WMIV1234567890ABCDEX"))

    def authorize(self) -> None:
        self.send(m.AuthorizationSetupReq(header=self.header()))
        self.send(
            m.AuthorizationReq(
                header=self.header(),
                selected_authorization_service=m.Authorization.EIM,
                authorization_mode=m.EIMAReqAuthorizationMode(),
            )
        )

    def select(self, service: int, parameter_set: int = 1) -> Any:
        self.send(m.ServiceDiscoveryReq(header=self.header()))
        self.send(m.ServiceDetailReq(header=self.header(), service_id=service))
        return self.send(
            m.ServiceSelectionReq(
                header=self.header(),
                selected_energy_transfer_service=m.SelectedService(service_id=service, parameter_set_id=parameter_set),
            )
        )


__all__ = ["EPOCH", "NS_AC", "NS_DC", "Script", "clock", "pair", "run"]
