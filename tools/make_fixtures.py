#!/usr/bin/env python3
"""Builds the byte-exact EXI proof corpus in ``fixtures/exi/`` with the reference oracle.

    .venv/bin/python tools/make_fixtures.py            # rebuild every .xml, validate, rerun the oracle
    .venv/bin/python tools/make_fixtures.py --check    # validate and compare with the oracle, write nothing

Each document is written as ``fixtures/exi/<dir>/<Name>.xml``; ``<dir>`` is a schema key (``sap``,
``common``, ``ac``, ``dc``, ``acdp``, ``wpt``, ``iso2``, ``din``), or ``<key>-fragment`` for EXI
fragments (``xmldsig-fragment``: SignedInfo; ``common-fragment``: -20 elements that are signed).
Every document is validated against the XSDs with xmlschema, then the oracle (EXIficient) encodes all
of them in one JVM and its bytes are written to ``<Name>.exi``. The oracle also decodes its own bytes
and the result must be infoset-equal to the XML (a check of the corpus, not of our codec).

Values follow the vehicle brief: 240 V split-phase AC at 48 A (11.52 kW charge and export), 60 Hz;
a DC 800 V class battery; SOC with a minimum-SOC reserve. Elements are given by local name; the
namespace of each element is looked up in the schema, so the XML always carries the right one.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iso15118.exi.xmlio import PREFIXES  # noqa: E402
from tools.infoset import compare, load_schema  # noqa: E402

FIXTURES = ROOT / "fixtures" / "exi"

# the prefixes the codec's XML writer uses too
NS = {uri: prefix for uri, prefix in PREFIXES.items() if prefix != "xsi"}
XSI = "http://www.w3.org/2001/XMLSchema-instance"

C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


# ---------------------------------------------------------------------------------------------
# A tiny element DSL: names are local; namespaces come from the schema
# ---------------------------------------------------------------------------------------------

class N:
    """An element by local name, with children (N or text) and attributes (by local name)."""

    def __init__(self, name: str, *children: Any, **attrs: Any) -> None:
        self.name = name
        self.children: list[Any] = []
        for c in children:
            self._add(c)
        self.attrs = {k: str(v) for k, v in attrs.items() if v is not None}

    def _add(self, c: Any) -> None:
        if c is None:
            return
        if isinstance(c, (list, tuple)):
            for x in c:
                self._add(x)
            return
        self.children.append(c)


E = N


def _local(name: str) -> str:
    return name.split("}", 1)[1] if name.startswith("{") else name


def _ns(name: str) -> str:
    return name[1:].split("}", 1)[0] if name.startswith("{") else ""


class Qualifier:
    """Turns an :class:`N` tree into an lxml tree, finding each element's namespace in the schema."""

    def __init__(self, key: str) -> None:
        self.schema = load_schema(key)
        self._globals: dict[str, list[Any]] = {}
        for name, decl in self.schema.maps.elements.items():
            self._globals.setdefault(_local(name), []).append(decl)
        self._all: dict[str, Any] = {}
        for comp in self.schema.maps.iter_components():
            if comp.__class__.__name__ == "XsdElement" and comp.name and _local(comp.name) not in self._all:
                self._all[_local(comp.name)] = comp

    def _global(self, local: str) -> Any:
        found = self._globals.get(local)
        if not found:
            raise KeyError(f"no global element {local}")
        return found[0]

    def _child(self, parent_type: Any, local: str) -> Any:
        content = getattr(parent_type, "content", None)
        if content is not None and hasattr(content, "iter_elements"):
            for decl in content.iter_elements():
                if decl.name and _local(decl.name) == local:
                    return decl
        return self._global(local)  # substitution group member

    def build(self, node: N, fragment_local: bool = False) -> etree._Element:
        """The qualified lxml tree of ``node`` (root: global element, or any element for fragments)."""
        decl = self._globals.get(node.name, [None])[0]
        if decl is None and fragment_local:
            decl = self._all[node.name]
        if decl is None:
            raise KeyError(node.name)
        namespaces: set[str] = set()
        self._collect(node, decl, namespaces)
        root_ns = _ns(decl.name)
        # Unqualified local elements (SupportedAppProtocol) cannot live under a default namespace.
        use_default = bool(root_ns) and "" not in namespaces
        nsmap: dict[str | None, str] = {None: root_ns} if use_default else {}
        for ns in sorted(namespaces):
            if ns and (ns != root_ns or self._root_ns_attrs or not use_default):
                nsmap[NS[ns]] = ns
        self._root_ns_attrs = False
        el = etree.Element(decl.name, nsmap=nsmap)
        self._fill(el, node, decl)
        return el

    _root_ns_attrs = False

    def _collect(self, node: N, decl: Any, acc: set[str]) -> None:
        acc.add(_ns(decl.name))
        xsd_type = decl.type
        for a in node.attrs:
            qn = self._attr_name(xsd_type, a)
            if _ns(qn):
                acc.add(_ns(qn))
                self._root_ns_attrs = True
        for c in node.children:
            if isinstance(c, N):
                self._collect(c, self._child(xsd_type, c.name), acc)

    @staticmethod
    def _attr_name(xsd_type: Any, local: str) -> str:
        for k in (getattr(xsd_type, "attributes", None) or {}):
            if k and _local(k) == local:
                return k
        raise KeyError(f"no attribute {local} in {xsd_type}")

    def _fill(self, el: etree._Element, node: N, decl: Any) -> None:
        xsd_type = decl.type
        for a, v in node.attrs.items():
            el.set(self._attr_name(xsd_type, a), v)
        for c in node.children:
            if isinstance(c, N):
                child_decl = self._child(xsd_type, c.name)
                sub = etree.SubElement(el, child_decl.name)
                self._fill(sub, c, child_decl)
            else:
                el.text = (el.text or "") + str(c)


# ---------------------------------------------------------------------------------------------
# Shared values
# ---------------------------------------------------------------------------------------------

SID = "3B5A9C0E12D4F607"
SID0 = "0000000000000000"
T0 = 1764115200  # 2025-11-26T00:00:00Z
EVCCID = "WMIV1234567890ABCDEX"
EVSEID = "US*ABC*E1234567*1"
EMAID = "USABCC12345678X"


def rbytes(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (fixture content, not secrets)."""
    r = random.Random(seed)
    return bytes(r.getrandbits(8) for _ in range(n))


def b64(n: int, seed: int) -> str:
    import base64

    return base64.b64encode(rbytes(n, seed)).decode("ascii")


def cert(n: int, seed: int) -> str:
    """A DER-shaped certificate of ``n`` bytes (SEQUENCE header, then filler) in base64."""
    import base64

    body = rbytes(n - 4, seed)
    return base64.b64encode(bytes([0x30, 0x82, (n - 4) >> 8, (n - 4) & 0xFF]) + body).decode("ascii")


def rn(name: str, value: int, exp: int = 0) -> N:
    """A RationalNumberType element: value * 10^exp."""
    return E(name, E("Exponent", exp), E("Value", value))


def header(t: int = 0, sid: str = SID, sig: N | None = None) -> N:
    """A -20 message Header, TimeStamp ``t`` seconds into the session."""
    return E("Header", E("SessionID", sid), E("TimeStamp", T0 + t), sig)


def signature(refs: list[tuple[str, str]], seed: int, digest: str = SHA512, method: str = ECDSA_SHA512,
              sig_len: int = 132, with_key_info: bool = False) -> N:
    """A ds:Signature over the elements ``refs`` = [(Id, digest-bytes-seed)]."""
    dlen = 64 if digest == SHA512 else 32
    return E(
        "Signature",
        signed_info(refs, digest, method, dlen),
        E("SignatureValue", b64(sig_len, seed)),
        E("KeyInfo", E("KeyName", "contract-leaf")) if with_key_info else None,
    )


def signed_info(refs: list[tuple[str, str]], digest: str = SHA512, method: str = ECDSA_SHA512,
                dlen: int = 64, si_id: str | None = None) -> N:
    return E(
        "SignedInfo",
        E("CanonicalizationMethod", Algorithm=C14N_EXI),
        E("SignatureMethod", Algorithm=method),
        [E("Reference",
           E("Transforms", E("Transform", Algorithm=C14N_EXI)),
           E("DigestMethod", Algorithm=digest),
           E("DigestValue", b64(dlen, sum(map(ord, seed)))),
           URI=f"#{rid}") for rid, seed in refs],
        Id=si_id,
    )


@dataclass
class Doc:
    """One corpus document."""

    dir: str
    name: str
    root: N | None
    note: str
    xml: bytes | None = None  # a document written as XML text (open content the N trees cannot express)

    @property
    def key(self) -> str:
        return self.dir.split("-")[0]

    @property
    def fragment(self) -> bool:
        return self.dir.endswith("-fragment")


DOCS: list[Doc] = []


def doc(dir_: str, name: str, note: str, root: N) -> None:
    """Registers a corpus document."""
    DOCS.append(Doc(dir_, name, root, note))


# ---------------------------------------------------------------------------------------------
# SupportedAppProtocol
# ---------------------------------------------------------------------------------------------

def app(ns: str, major: int, minor: int, sid: int, prio: int) -> N:
    return E("AppProtocol", E("ProtocolNamespace", ns), E("VersionNumberMajor", major),
             E("VersionNumberMinor", minor), E("SchemaID", sid), E("Priority", prio))


doc("sap", "SupportedAppProtocolReq", "EV offers -20 AC, -20 DC, -2 and DIN (priority 1..4)",
    E("supportedAppProtocolReq",
      app("urn:iso:std:iso:15118:-20:AC", 1, 0, 1, 1),
      app("urn:iso:std:iso:15118:-20:DC", 1, 0, 2, 2),
      app("urn:iso:15118:2:2013:MsgDef", 2, 0, 3, 3),
      app("urn:din:70121:2012:MsgDef", 2, 0, 4, 4)))
doc("sap", "SupportedAppProtocolReq_Max20", "20 entries (the maximum), namespaces up to 100 chars, max values",
    E("supportedAppProtocolReq",
      [app(("urn:iso:std:iso:15118:-20:AC" + "x" * 100)[:100] if i == 0 else
           f"urn:iso:std:iso:15118:-20:{['AC', 'DC', 'WPT', 'ACDP'][i % 4]}", 1 if i else 4294967295,
           0 if i else 4294967295, 255 - i, i + 1) for i in range(20)]))
doc("sap", "SupportedAppProtocolReq_DCOnly", "a DC-only EV (single -20 DC entry)",
    E("supportedAppProtocolReq", app("urn:iso:std:iso:15118:-20:DC", 1, 0, 10, 1)))
doc("sap", "SupportedAppProtocolRes", "OK_SuccessfulNegotiation, SchemaID 1",
    E("supportedAppProtocolRes", E("ResponseCode", "OK_SuccessfulNegotiation"), E("SchemaID", 1)))
doc("sap", "SupportedAppProtocolRes_MinorDeviation", "OK_SuccessfulNegotiationWithMinorDeviation, SchemaID 255",
    E("supportedAppProtocolRes", E("ResponseCode", "OK_SuccessfulNegotiationWithMinorDeviation"), E("SchemaID", 255)))
doc("sap", "SupportedAppProtocolRes_Failed", "Failed_NoNegotiation, no SchemaID",
    E("supportedAppProtocolRes", E("ResponseCode", "Failed_NoNegotiation")))

# ---------------------------------------------------------------------------------------------
# Common messages (urn:iso:std:iso:15118:-20:CommonMessages)
# ---------------------------------------------------------------------------------------------

C = "common"
doc(C, "SessionSetupReq", "new session (SessionID 0), EVCCID = VIN",
    E("SessionSetupReq", header(0, SID0), E("EVCCID", EVCCID)))
doc(C, "SessionSetupReq_MaxEVCCID", "EVCCID of 255 characters (maxLength), TimeStamp = 2^64-1",
    E("SessionSetupReq", E("Header", E("SessionID", "FFFFFFFFFFFFFFFF"), E("TimeStamp", 2**64 - 1)),
      E("EVCCID", ("WMIV1234567890ABCDEX-" * 13)[:255])))
doc(C, "SessionSetupRes", "OK_NewSessionEstablished with the SECC's EVSEID",
    E("SessionSetupRes", header(1), E("ResponseCode", "OK_NewSessionEstablished"), E("EVSEID", EVSEID)))
doc(C, "SessionSetupRes_OldSessionJoined", "resumed session, TimeStamp 0",
    E("SessionSetupRes", E("Header", E("SessionID", SID), E("TimeStamp", 0)),
      E("ResponseCode", "OK_OldSessionJoined"), E("EVSEID", "ZZ00000")))
doc(C, "AuthorizationSetupReq", "empty body",
    E("AuthorizationSetupReq", header(2)))
doc(C, "AuthorizationSetupRes_EIM", "EIM only, no certificate installation",
    E("AuthorizationSetupRes", header(3), E("ResponseCode", "OK"), E("AuthorizationServices", "EIM"),
      E("CertificateInstallationService", "false"), E("EIM_ASResAuthorizationMode")))
doc(C, "AuthorizationSetupRes_PnC", "EIM and PnC offered, 16-byte GenChallenge, 3 supported providers",
    E("AuthorizationSetupRes", header(3), E("ResponseCode", "OK"), E("AuthorizationServices", "EIM"),
      E("AuthorizationServices", "PnC"), E("CertificateInstallationService", "true"),
      E("PnC_ASResAuthorizationMode", E("GenChallenge", b64(16, 7)),
        E("SupportedProviders", E("ProviderID", "USABC"), E("ProviderID", "DE-8AA"),
          E("ProviderID", "Example Mobility Service Provider with a long name for the 80 char limit.."[:80])))))
doc(C, "AuthorizationReq_EIM", "EIM selected",
    E("AuthorizationReq", header(4), E("SelectedAuthorizationService", "EIM"), E("EIM_AReqAuthorizationMode")))


def pnc_mode(rid: str = "id1", n_sub: int = 2) -> N:
    return E("PnC_AReqAuthorizationMode", E("GenChallenge", b64(16, 7)),
             E("ContractCertificateChain", E("Certificate", cert(812, 21)),
               E("SubCertificates", [E("Certificate", cert(745 + 11 * i, 22 + i)) for i in range(n_sub)])),
             Id=rid)


doc(C, "AuthorizationReq_PnC", "PnC: Header Signature (ECDSA secp521r1, 132-byte r||s, SHA-512) over "
    "PnC_AReqAuthorizationMode Id=id1, contract chain leaf + 2 sub-CAs",
    E("AuthorizationReq", header(4, sig=signature([("id1", "pnc")], 41)),
      E("SelectedAuthorizationService", "PnC"), pnc_mode()))
doc(C, "AuthorizationRes", "OK, Finished",
    E("AuthorizationRes", header(5), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished")))
doc(C, "AuthorizationRes_Ongoing", "Ongoing_WaitingForCustomerInteraction",
    E("AuthorizationRes", header(5), E("ResponseCode", "OK"),
      E("EVSEProcessing", "Ongoing_WaitingForCustomerInteraction")))
doc(C, "AuthorizationRes_ChallengeInvalid", "WARNING_ChallengeInvalid, Finished",
    E("AuthorizationRes", header(5), E("ResponseCode", "WARNING_ChallengeInvalid"), E("EVSEProcessing", "Finished")))
doc(C, "ServiceDiscoveryReq", "EV supports AC (1) and AC_BPT (5)",
    E("ServiceDiscoveryReq", header(6), E("SupportedServiceIDs", E("ServiceID", 1), E("ServiceID", 5))))
doc(C, "ServiceDiscoveryReq_NoList", "no SupportedServiceIDs",
    E("ServiceDiscoveryReq", header(6)))
doc(C, "ServiceDiscoveryReq_Max16", "16 service IDs (maximum), 0 and 65535 included",
    E("ServiceDiscoveryReq", header(6), E("SupportedServiceIDs", [E("ServiceID", v) for v in
                                                                   [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                                    60000, 65535]])))
doc(C, "ServiceDiscoveryRes_AC", "AC and AC_BPT, VAS Internet (65) and parking (66)",
    E("ServiceDiscoveryRes", header(7), E("ResponseCode", "OK"), E("ServiceRenegotiationSupported", "true"),
      E("EnergyTransferServiceList", E("Service", E("ServiceID", 1), E("FreeService", "false")),
        E("Service", E("ServiceID", 5), E("FreeService", "false"))),
      E("VASList", E("Service", E("ServiceID", 65), E("FreeService", "true")),
        E("Service", E("ServiceID", 66), E("FreeService", "1")))))
doc(C, "ServiceDiscoveryRes_DC", "DC and DC_BPT, no VAS list, boolean written as 0",
    E("ServiceDiscoveryRes", header(7), E("ResponseCode", "OK"), E("ServiceRenegotiationSupported", "0"),
      E("EnergyTransferServiceList", E("Service", E("ServiceID", 2), E("FreeService", "false")),
        E("Service", E("ServiceID", 6), E("FreeService", "false")))))
doc(C, "ServiceDiscoveryRes_LexicalForms", "non-canonical lexical forms the encoder must normalize: lower-case "
    "hex with blanks, +/leading zeros, booleans 1/0 with blanks",
    E("ServiceDiscoveryRes", E("Header", E("SessionID", " 3b5a9c0e12d4f607\n"), E("TimeStamp", "+0001764115207")),
      E("ResponseCode", "OK"), E("ServiceRenegotiationSupported", " 1 "),
      E("EnergyTransferServiceList", E("Service", E("ServiceID", "0001"), E("FreeService", "\t0\n")),
        E("Service", E("ServiceID", " +5 "), E("FreeService", "false")))))
doc(C, "AuthorizationSetupRes_LexicalForms", "GenChallenge in base64 with line breaks, boolean written as 1",
    E("AuthorizationSetupRes", header(3), E("ResponseCode", "OK"), E("AuthorizationServices", "PnC"),
      E("CertificateInstallationService", "1"),
      E("PnC_ASResAuthorizationMode", E("GenChallenge", "\n" + "\n".join(
          (lambda t: [t[i:i + 8] for i in range(0, len(t), 8)])(b64(16, 8))) + "\n"))))
doc(C, "ServiceDetailReq", "details of AC_BPT (5)",
    E("ServiceDetailReq", header(8), E("ServiceID", 5)))


def param(name: str, kind: str, value: Any) -> N:
    if kind == "rationalNumber":
        return E("Parameter", rn("rationalNumber", value[0], value[1]), Name=name)
    return E("Parameter", E(kind, value), Name=name)


doc(C, "ServiceDetailRes_AC_BPT", "AC_BPT parameter set: split-phase 240 V, every Parameter value kind",
    E("ServiceDetailRes", header(9), E("ResponseCode", "OK"), E("ServiceID", 5),
      E("ServiceParameterList",
        E("ParameterSet", E("ParameterSetID", 1),
          param("Connector", "intValue", 1),
          param("ControlMode", "intValue", 1),
          param("EVSENominalVoltage", "intValue", 240),
          param("MobilityNeedsMode", "intValue", 1),
          param("Pricing", "intValue", 0),
          param("BPTChannel", "intValue", 1),
          param("GeneratorMode", "intValue", 1),
          param("GridCodeIslandingDetectionMethod", "intValue", 1),
          param("EVSENominalFrequency", "rationalNumber", (600, -1)),
          param("SplitPhase", "boolValue", "true"),
          param("Phases", "byteValue", -1),
          param("MaxCurrent", "shortValue", 48),
          param("Description", "finiteString", "240 V split phase, 48 A")),
        E("ParameterSet", E("ParameterSetID", 2),
          param("Connector", "intValue", 1),
          param("ControlMode", "intValue", 2),
          param("EVSENominalVoltage", "intValue", 240),
          param("MobilityNeedsMode", "intValue", 2),
          param("Pricing", "intValue", 1),
          param("BPTChannel", "intValue", 1),
          param("GeneratorMode", "intValue", 2),
          param("GridCodeIslandingDetectionMethod", "intValue", 2)))))
doc(C, "ServiceDetailRes_DC_BPT", "DC_BPT parameter sets for an 800 V class vehicle, int extremes",
    E("ServiceDetailRes", header(9), E("ResponseCode", "OK"), E("ServiceID", 6),
      E("ServiceParameterList",
        E("ParameterSet", E("ParameterSetID", 1),
          param("Connector", "intValue", 1), param("ControlMode", "intValue", 1),
          param("MobilityNeedsMode", "intValue", 1), param("Pricing", "intValue", 0),
          param("BPTChannel", "intValue", 1), param("GeneratorMode", "intValue", 1)),
        E("ParameterSet", E("ParameterSetID", 65535),
          param("Min", "intValue", -2147483648), param("Max", "intValue", 2147483647),
          param("ByteMin", "byteValue", -128), param("ShortMax", "shortValue", 32767),
          param("Off", "boolValue", "0")))))
doc(C, "ServiceSelectionReq", "AC_BPT parameter set 1, two VAS",
    E("ServiceSelectionReq", header(10),
      E("SelectedEnergyTransferService", E("ServiceID", 5), E("ParameterSetID", 1)),
      E("SelectedVASList", E("SelectedService", E("ServiceID", 65), E("ParameterSetID", 1)),
        E("SelectedService", E("ServiceID", 66), E("ParameterSetID", 3)))))
doc(C, "ServiceSelectionReq_DC", "DC_BPT parameter set 1, no VAS",
    E("ServiceSelectionReq", header(10),
      E("SelectedEnergyTransferService", E("ServiceID", 6), E("ParameterSetID", 1))))
doc(C, "ServiceSelectionRes", "OK",
    E("ServiceSelectionRes", header(11), E("ResponseCode", "OK")))


def price_schedule(rid: str | None, full: bool = True) -> N:
    return E(
        "AbsolutePriceSchedule",
        E("TimeAnchor", T0 + 60), E("PriceScheduleID", 1),
        E("PriceScheduleDescription", "Time-of-use tariff: peak 16:00-21:00, off-peak otherwise. V2G export credited "
                                      "at the retail rate minus network fees (max 160 chars)"[:160]) if full else None,
        E("Currency", "USD"), E("Language", "eng"),
        E("PriceAlgorithm", "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"),
        rn("MinimumCost", 50, -2) if full else None, rn("MaximumCost", 9999, -2) if full else None,
        E("TaxRules",
          E("TaxRule", E("TaxRuleID", 1), E("TaxRuleName", "State sales tax"), rn("TaxRate", 725, -4),
            E("TaxIncludedInPrice", "false"), E("AppliesToEnergyFee", "true"), E("AppliesToParkingFee", "false"),
            E("AppliesToOverstayFee", "true"), E("AppliesMinimumMaximumCost", "true")),
          E("TaxRule", E("TaxRuleID", 4294967295), rn("TaxRate", 1, -2),
            E("AppliesToEnergyFee", "true"), E("AppliesToParkingFee", "true"),
            E("AppliesToOverstayFee", "false"), E("AppliesMinimumMaximumCost", "false"))) if full else None,
        E("PriceRuleStacks",
          E("PriceRuleStack", E("Duration", 0),
            E("PriceRule", rn("EnergyFee", 32, -2), rn("ParkingFee", 0), E("ParkingFeePeriod", 3600),
              E("CarbonDioxideEmission", 380), E("RenewableGenerationPercentage", 42), rn("PowerRangeStart", 0)),
            E("PriceRule", rn("EnergyFee", -12, -2), rn("PowerRangeStart", -1152, 1))),
          E("PriceRuleStack", E("Duration", 18000),
            E("PriceRule", rn("EnergyFee", 48, -2), rn("PowerRangeStart", 0)))),
        E("OverstayRules", E("OverstayTimeThreshold", 1800), rn("OverstayPowerThreshold", 1, 3),
          E("OverstayRule", E("OverstayRuleDescription", "Idle fee after charging"), E("StartTime", 1800),
            rn("OverstayFee", 40, -2), E("OverstayFeePeriod", 60))) if full else None,
        E("AdditionalSelectedServices",
          E("AdditionalService", E("ServiceName", "Parking"), rn("ServiceFee", 200, -2))) if full else None,
        Id=rid,
    )


def power_schedule(entries: list[tuple[int, int, int]], l23: bool = False, extras: bool = True) -> N:
    return E("PowerSchedule", E("TimeAnchor", T0 + 60),
             rn("AvailableEnergy", 60, 3) if extras else None,
             rn("PowerTolerance", 5, 2) if extras else None,
             E("PowerScheduleEntries",
               [E("PowerScheduleEntry", E("Duration", d), rn("Power", v, e),
                  rn("Power_L2", v, e) if l23 else None, rn("Power_L3", v, e) if l23 else None)
                for d, v, e in entries]))


doc(C, "ScheduleExchangeReq_Scheduled", "Scheduled mode with EV energy offer (power schedule and "
    "absolute price schedule); MaximumSupportingPoints 1024 (max)",
    E("ScheduleExchangeReq", header(12), E("MaximumSupportingPoints", 1024),
      E("Scheduled_SEReqControlMode", E("DepartureTime", 28800), rn("EVTargetEnergyRequest", 452, 2),
        rn("EVMaximumEnergyRequest", 60, 3), rn("EVMinimumEnergyRequest", 12, 3),
        E("EVEnergyOffer",
          E("EVPowerSchedule", E("TimeAnchor", T0 + 60),
            E("EVPowerScheduleEntries",
              E("EVPowerScheduleEntry", E("Duration", 3600), rn("Power", -11520)),
              E("EVPowerScheduleEntry", E("Duration", 7200), rn("Power", -576, 1)))),
          E("EVAbsolutePriceSchedule", E("TimeAnchor", T0 + 60), E("Currency", "USD"),
            E("PriceAlgorithm", "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"),
            E("EVPriceRuleStacks",
              E("EVPriceRuleStack", E("Duration", 0),
                E("EVPriceRule", rn("EnergyFee", 25, -2), rn("PowerRangeStart", 0)),
                E("EVPriceRule", rn("EnergyFee", 30, -2), rn("PowerRangeStart", 5760)))))))))
doc(C, "ScheduleExchangeReq_ScheduledMinimal", "Scheduled mode, every optional element absent, "
    "MaximumSupportingPoints 12 (min)",
    E("ScheduleExchangeReq", header(12), E("MaximumSupportingPoints", 12), E("Scheduled_SEReqControlMode")))
doc(C, "ScheduleExchangeReq_Dynamic", "Dynamic mode: departure in 8 h, minimum-SOC reserve 30 %, target 80 %, "
    "V2X energy requests",
    E("ScheduleExchangeReq", header(12), E("MaximumSupportingPoints", 24),
      E("Dynamic_SEReqControlMode", E("DepartureTime", 28800), E("MinimumSOC", 30), E("TargetSOC", 80),
        rn("EVTargetEnergyRequest", 452, 2), rn("EVMaximumEnergyRequest", 60, 3),
        rn("EVMinimumEnergyRequest", 12, 3), rn("EVMaximumV2XEnergyRequest", 42, 3),
        rn("EVMinimumV2XEnergyRequest", -18, 3))))
doc(C, "ScheduleExchangeRes_Scheduled", "3 schedule tuples: absolute price schedule (Id), price levels, "
    "discharging schedule; per-phase powers",
    E("ScheduleExchangeRes", header(13), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      E("GoToPause", "false"),
      E("Scheduled_SEResControlMode",
        E("ScheduleTuple", E("ScheduleTupleID", 1),
          E("ChargingSchedule", power_schedule([(0, 11520, 0), (3600, 576, 1), (7200, 0, 0)]),
            price_schedule("PS1")),
          E("DischargingSchedule", power_schedule([(0, -11520, 0), (14400, -5760, 0)], extras=False))),
        E("ScheduleTuple", E("ScheduleTupleID", 2),
          E("ChargingSchedule", power_schedule([(0, 3840, 0), (86400, 3840, 0)], l23=True),
            E("PriceLevelSchedule", E("TimeAnchor", T0 + 60), E("PriceScheduleID", 2),
              E("NumberOfPriceLevels", 3),
              E("PriceLevelScheduleEntries",
                E("PriceLevelScheduleEntry", E("Duration", 0), E("PriceLevel", 0)),
                E("PriceLevelScheduleEntry", E("Duration", 3600), E("PriceLevel", 2)),
                E("PriceLevelScheduleEntry", E("Duration", 7200), E("PriceLevel", 255))),
              Id="PL2"))),
        E("ScheduleTuple", E("ScheduleTupleID", 4294967295),
          E("ChargingSchedule", power_schedule([(0, 1152, 1)], extras=False))))))
doc(C, "ScheduleExchangeRes_Scheduled_Signed", "one tuple, absolute price schedule signed by the "
    "pricing provider (Signature in Header references Id=PS1)",
    E("ScheduleExchangeRes", header(13, sig=signature([("PS1", "price")], 43)), E("ResponseCode", "OK"),
      E("EVSEProcessing", "Finished"),
      E("Scheduled_SEResControlMode",
        E("ScheduleTuple", E("ScheduleTupleID", 1),
          E("ChargingSchedule", power_schedule([(0, 11520, 0)]), price_schedule("PS1", full=False))))))
doc(C, "ScheduleExchangeRes_Dynamic", "Dynamic mode with departure time, SOC limits and absolute price schedule",
    E("ScheduleExchangeRes", header(13), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      E("Dynamic_SEResControlMode", E("DepartureTime", 28800), E("MinimumSOC", 30), E("TargetSOC", 80),
        price_schedule(None))))
doc(C, "ScheduleExchangeRes_Dynamic_Ongoing", "Ongoing, GoToPause true, empty dynamic control mode",
    E("ScheduleExchangeRes", header(13), E("ResponseCode", "OK"), E("EVSEProcessing", "Ongoing"),
      E("GoToPause", "1"), E("Dynamic_SEResControlMode")))


def ev_power_profile(dynamic: bool) -> N:
    mode = E("Dynamic_EVPPTControlMode") if dynamic else E(
        "Scheduled_EVPPTControlMode", E("SelectedScheduleTupleID", 1),
        E("PowerToleranceAcceptance", "PowerToleranceConfirmed"))
    return E("EVPowerProfile", E("TimeAnchor", T0 + 61), mode,
             E("EVPowerProfileEntries",
               E("EVPowerProfileEntry", E("Duration", 3600), rn("Power", -11520)),
               E("EVPowerProfileEntry", E("Duration", 3600), rn("Power", -5760), rn("Power_L2", 0),
                 rn("Power_L3", 0))))


doc(C, "PowerDeliveryReq_Start_BPT", "Start with scheduled EV power profile and BPT_ChannelSelection Discharge",
    E("PowerDeliveryReq", header(20), E("EVProcessing", "Finished"), E("ChargeProgress", "Start"),
      ev_power_profile(False), E("BPT_ChannelSelection", "Discharge")))
doc(C, "PowerDeliveryReq_Start_Dynamic", "Start, dynamic power profile, BPT_ChannelSelection Charge",
    E("PowerDeliveryReq", header(20), E("EVProcessing", "Finished"), E("ChargeProgress", "Start"),
      ev_power_profile(True), E("BPT_ChannelSelection", "Charge")))
doc(C, "PowerDeliveryReq_Start", "Start without profile (non-BPT)",
    E("PowerDeliveryReq", header(20), E("EVProcessing", "Finished"), E("ChargeProgress", "Start")))
doc(C, "PowerDeliveryReq_Standby", "Standby",
    E("PowerDeliveryReq", header(40), E("EVProcessing", "Ongoing"), E("ChargeProgress", "Standby")))
doc(C, "PowerDeliveryReq_Stop", "Stop",
    E("PowerDeliveryReq", header(90), E("EVProcessing", "Finished"), E("ChargeProgress", "Stop")))
doc(C, "PowerDeliveryReq_ScheduleRenegotiation", "ScheduleRenegotiation",
    E("PowerDeliveryReq", header(60), E("EVProcessing", "Finished"), E("ChargeProgress", "ScheduleRenegotiation")))
doc(C, "PowerDeliveryRes", "OK",
    E("PowerDeliveryRes", header(21), E("ResponseCode", "OK")))
doc(C, "PowerDeliveryRes_EVSEStatus", "OK_PowerToleranceConfirmed with EVSEStatus (ExitStandby)",
    E("PowerDeliveryRes", header(21), E("ResponseCode", "OK_PowerToleranceConfirmed"),
      E("EVSEStatus", E("NotificationMaxDelay", 65535), E("EVSENotification", "ExitStandby"))))
doc(C, "SessionStopReq_Terminate", "Terminate with termination code and explanation (max lengths)",
    E("SessionStopReq", header(95), E("ChargingSession", "Terminate"),
      E("EVTerminationCode", ("EV-TERM-0042-" * 7)[:80]),
      E("EVTerminationExplanation", ("Driver requested stop from the app; minimum SOC reserve reached. " * 3)[:160])))
doc(C, "SessionStopReq_Pause", "Pause",
    E("SessionStopReq", header(95), E("ChargingSession", "Pause")))
doc(C, "SessionStopReq_ServiceRenegotiation", "ServiceRenegotiation",
    E("SessionStopReq", header(95), E("ChargingSession", "ServiceRenegotiation")))
doc(C, "SessionStopRes", "OK",
    E("SessionStopRes", header(96), E("ResponseCode", "OK")))
doc(C, "CertificateInstallationReq", "signed by the OEM provisioning key (Id=OEM1), 3 root certificate IDs "
    "(one with a 20-byte serial number), prioritized eMAIDs",
    E("CertificateInstallationReq", header(2, sig=signature([("OEM1", "oem")], 44)),
      E("OEMProvisioningCertificateChain", E("Certificate", cert(790, 31)),
        E("SubCertificates", E("Certificate", cert(702, 32)), E("Certificate", cert(688, 33))), Id="OEM1"),
      E("ListOfRootCertificateIDs",
        E("RootCertificateID", E("X509IssuerName", "CN=V2G Root CA,O=Example,C=US"), E("X509SerialNumber", 12345)),
        E("RootCertificateID", E("X509IssuerName", "CN=MO Root CA,DC=MO,O=Example,C=US"),
          E("X509SerialNumber", 1461501637330902918203684832716283019655932542975)),
        E("RootCertificateID", E("X509IssuerName", "CN=OEM Root,DC=OEM"), E("X509SerialNumber", -1))),
      E("MaximumContractCertificateChains", 3),
      E("PrioritizedEMAIDs", E("EMAID", EMAID), E("EMAID", "DEABCC98765432Y"))))


def installation_data(rid: str, curve: str) -> N:
    key = {"SECP521": E("SECP521_EncryptedPrivateKey", b64(94, 51)),
           "X448": E("X448_EncryptedPrivateKey", b64(84, 52)),
           "TPM": E("TPM_EncryptedPrivateKey", b64(206, 53))}[curve]
    return E("SignedInstallationData",
             E("ContractCertificateChain", E("Certificate", cert(1600, 54)),
               E("SubCertificates", E("Certificate", cert(730, 55)), E("Certificate", cert(731, 56)),
                 E("Certificate", cert(4, 57)))),
             E("ECDHCurve", "X448" if curve == "X448" else "SECP521"), E("DHPublicKey", b64(133, 58)),
             key, Id=rid)


doc(C, "CertificateInstallationRes", "SECP521 key delivery, contract chain with a 1600-byte (max) leaf and "
    "3 sub-certificates, signed by the CPS (Id=SID1)",
    E("CertificateInstallationRes", header(3, sig=signature([("SID1", "cps")], 45)), E("ResponseCode", "OK"),
      E("EVSEProcessing", "Finished"),
      E("CPSCertificateChain", E("Certificate", cert(760, 61)), E("SubCertificates", E("Certificate", cert(700, 62)))),
      installation_data("SID1", "SECP521"), E("RemainingContractCertificateChains", 0)))
doc(C, "CertificateInstallationRes_X448", "X448 key delivery, CPS chain without sub-certificates",
    E("CertificateInstallationRes", header(3, sig=signature([("SID1", "cps")], 46)), E("ResponseCode", "OK"),
      E("EVSEProcessing", "Finished"), E("CPSCertificateChain", E("Certificate", cert(760, 61))),
      installation_data("SID1", "X448"), E("RemainingContractCertificateChains", 255)))


def meter_info(full: bool = True) -> N:
    return E("MeterInfo", E("MeterID", "MTR-2025-000123456789-ABCDEFGHIJ"[:32]),
             E("ChargedEnergyReadingWh", 45210),
             E("BPT_DischargedEnergyReadingWh", 12001) if full else None,
             E("CapacitiveEnergyReadingVARh", 0) if full else None,
             E("BPT_InductiveEnergyReadingVARh", 18446744073709551615) if full else None,
             E("MeterSignature", b64(64, 71)) if full else None,
             E("MeterStatus", -32768) if full else None,
             E("MeterTimestamp", T0 + 3700) if full else None)


def receipt() -> N:
    def cost(name: str, a: tuple[int, int], c: tuple[int, int]) -> N:
        return E(name, rn("Amount", *a), rn("CostPerUnit", *c))
    return E("Receipt", E("TimeAnchor", T0 + 3700),
             cost("EnergyCosts", (1447, -2), (32, -2)), cost("OccupancyCosts", (0, 0), (0, 0)),
             cost("AdditionalServicesCosts", (200, -2), (200, -2)), cost("OverstayCosts", (-5, -128), (127, 127)),
             E("TaxCosts", E("TaxRuleID", 1), rn("Amount", 105, -2)),
             E("TaxCosts", E("TaxRuleID", 2), rn("Amount", 1, -2)))


doc(C, "MeteringConfirmationReq", "SignedMeteringData (Id=SMD1) with full meter info and receipt, "
    "scheduled mode, signed",
    E("MeteringConfirmationReq", header(92, sig=signature([("SMD1", "meter")], 47)),
      E("SignedMeteringData", E("SessionID", SID), meter_info(), receipt(),
        E("Scheduled_SMDTControlMode", E("SelectedScheduleTupleID", 1)), Id="SMD1")))
doc(C, "MeteringConfirmationReq_Dynamic", "dynamic mode, minimal meter info, no receipt",
    E("MeteringConfirmationReq", header(92, sig=signature([("SMD2", "meter2")], 48)),
      E("SignedMeteringData", E("SessionID", SID), meter_info(False), E("Dynamic_SMDTControlMode"), Id="SMD2")))
doc(C, "MeteringConfirmationRes", "OK",
    E("MeteringConfirmationRes", header(93), E("ResponseCode", "OK")))
doc(C, "VehicleCheckInReq", "CheckIn, Manual parking, positions",
    E("VehicleCheckInReq", header(1), E("EVCheckInStatus", "CheckIn"), E("ParkingMethod", "Manual"),
      E("VehicleFrame", 1200), E("DeviceOffset", -35), E("VehicleTravel", 32767)))
doc(C, "VehicleCheckInReq_Auto", "AutoParking, no optional fields",
    E("VehicleCheckInReq", header(1), E("EVCheckInStatus", "Processing"), E("ParkingMethod", "AutoParking")))
doc(C, "VehicleCheckInRes", "OK with parking space, device location and target distance",
    E("VehicleCheckInRes", header(2), E("ResponseCode", "OK"), E("ParkingSpace", 7), E("DeviceLocation", -120),
      E("TargetDistance", 0)))
doc(C, "VehicleCheckOutReq", "CheckOut",
    E("VehicleCheckOutReq", header(97), E("EVCheckOutStatus", "CheckOut"), E("CheckOutTime", T0 + 4000)))
doc(C, "VehicleCheckOutRes", "Completed",
    E("VehicleCheckOutRes", header(98), E("ResponseCode", "OK"), E("EVSECheckOutStatus", "Completed")))

# Fragments of -20 elements that are signed (encoded with fragment=True against "common")
CF = "common-fragment"
doc(CF, "PnC_AReqAuthorizationMode", "the element AuthorizationReq's signature references (Id=id1), "
    "as the EXI fragment that is digested", pnc_mode())
doc(CF, "SignedInstallationData", "SignedInstallationData (Id=SID1), SECP521", installation_data("SID1", "SECP521"))
doc(CF, "SignedInstallationData_TPM", "SignedInstallationData with a 206-byte TPM encrypted key",
    installation_data("SID3", "TPM"))
doc(CF, "SignedMeteringData", "SignedMeteringData (Id=SMD1)",
    E("SignedMeteringData", E("SessionID", SID), meter_info(), receipt(),
      E("Scheduled_SMDTControlMode", E("SelectedScheduleTupleID", 1)), Id="SMD1"))
doc(CF, "OEMProvisioningCertificateChain", "CertificateInstallationReq's signed element (Id=OEM1)",
    E("OEMProvisioningCertificateChain", E("Certificate", cert(790, 31)),
      E("SubCertificates", E("Certificate", cert(702, 32)), E("Certificate", cert(688, 33))), Id="OEM1"))
doc(CF, "AbsolutePriceSchedule", "a signed price schedule (Id=PS1)", price_schedule("PS1", full=False))

# xmldsig SignedInfo fragments (encoded with fragment=True against "xmldsig")
XF = "xmldsig-fragment"
doc(XF, "SignedInfo", "SignedInfo over PnC_AReqAuthorizationMode Id=id1: canonical EXI, ECDSA-SHA512, SHA-512",
    signed_info([("id1", "pnc")]))
doc(XF, "SignedInfo_4Refs", "4 references (the most a -20 SignedInfo may carry in libcbv2g), SignedInfo Id",
    signed_info([("id1", "a"), ("OEM1", "b"), ("SID1", "c"), ("SMD1", "d")], si_id="SI1"))
doc(XF, "SignedInfo_SHA256", "ISO 15118-2 style: ECDSA-SHA256, SHA-256 digest",
    signed_info([("ID1", "iso2")], SHA256, ECDSA_SHA256, 32))

# ---------------------------------------------------------------------------------------------
# xsi:type casts in open content (lax wildcards of xmldsig: ds:Object, ds:Transform, and ds:Object
# inside a -20 header's Signature). Elements no schema declares, cast to a built-in simple type, to
# an xmldsig or -20 complex type, nested; declared elements cast to their own or another type.
# Written as XML text: the N trees look every element up in the schema.
# ---------------------------------------------------------------------------------------------

XS = "http://www.w3.org/2001/XMLSchema"
DSN = "http://www.w3.org/2000/09/xmldsig#"
_CAST_NS = f'xmlns="{DSN}" xmlns:xsi="{XSI}" xmlns:xs="{XS}" xmlns:v="urn:example:vendor"'


def xml_doc(dir_: str, name: str, note: str, xml: str) -> None:
    """Registers a corpus document given as XML text."""
    DOCS.append(Doc(dir_, name, None, note, xml.encode("utf-8")))


def cast_object(inner: str, attrs: str = "") -> str:
    return f"<Object {_CAST_NS}{attrs}>{inner}</Object>"


XD = "xmldsig"
xml_doc(XD, "Object_CastInt", "an undeclared element cast to xs:int inside ds:Object",
        cast_object('<v:Phases xsi:type="xs:int">4</v:Phases>'))
xml_doc(XD, "Object_CastBuiltins", "undeclared elements cast to xs:string, base64Binary, hexBinary, boolean, decimal, "
        "double, unsignedLong (2^64-1), byte, anyURI, token, NMTOKENS; one qname repeated",
        cast_object('<v:Model xsi:type="xs:string">Cybertruck AWD</v:Model>'
                    f'<v:Blob xsi:type="xs:base64Binary">{b64(24, 5)}</v:Blob>'
                    '<v:Hex xsi:type="xs:hexBinary">0A0B0C</v:Hex>'
                    '<v:Flag xsi:type="xs:boolean">true</v:Flag>'
                    '<v:Price xsi:type="xs:decimal">-12.5</v:Price>'
                    '<v:Ratio xsi:type="xs:double">1.5E3</v:Ratio>'
                    '<v:Meter xsi:type="xs:unsignedLong">18446744073709551615</v:Meter>'
                    '<v:Trim xsi:type="xs:byte">-128</v:Trim>'
                    '<v:Link xsi:type="xs:anyURI">urn:example:fw:2.1</v:Link>'
                    '<v:Name xsi:type="xs:token">Outlet 240V</v:Name>'
                    '<v:Tags xsi:type="xs:NMTOKENS">v2h v2l v2v</v:Tags>'
                    '<v:Phases xsi:type="xs:int">3</v:Phases><v:Phases xsi:type="xs:short">-1</v:Phases>',
                    ' Id="o1" MimeType="text/xml"'))
xml_doc(XD, "Object_CastComplex", "undeclared elements cast to xmldsig complex types (KeyInfoType with Id, "
        "SignatureValueType, TransformType), nested casts inside the cast content",
        cast_object('<v:Key xsi:type="KeyInfoType" Id="k1"><KeyName>gateway</KeyName>'
                    '<v:Serial xsi:type="xs:unsignedInt">4294967295</v:Serial>'
                    '<v:Inner xsi:type="KeyValueType"><v:Curve xsi:type="xs:string">secp521r1</v:Curve></v:Inner></v:Key>'
                    f'<v:Sig xsi:type="SignatureValueType" Id="s1">{b64(132, 6)}</v:Sig>'
                    '<v:T xsi:type="TransformType" Algorithm="http://www.w3.org/TR/canonical-exi/"><XPath>/a</XPath></v:T>'))
xml_doc(XD, "Object_CastDateTime", "undeclared elements cast to the date/time types: dateTime (fraction, zones, "
        "a negative year), date, gYearMonth, gYear, gMonthDay, gMonth, gDay, time",
        cast_object('<v:Start xsi:type="xs:dateTime">2026-12-03T01:30:00Z</v:Start>'
                    '<v:Stamp xsi:type="xs:dateTime">2016-12-31T23:59:59.25-05:30</v:Stamp>'
                    '<v:Old xsi:type="xs:dateTime">-0044-03-15T12:00:00</v:Old>'
                    '<v:Day xsi:type="xs:date">2026-02-28+14:00</v:Day><v:Month xsi:type="xs:gYearMonth">2026-12</v:Month>'
                    '<v:Year xsi:type="xs:gYear">2026Z</v:Year><v:MD xsi:type="xs:gMonthDay">--12-24</v:MD>'
                    '<v:M xsi:type="xs:gMonth">--07</v:M><v:D xsi:type="xs:gDay">---31</v:D>'
                    '<v:T xsi:type="xs:time">08:15:30.5Z</v:T>'))
xml_doc(XD, "Object_CastNested", "ObjectType casts three levels deep, an xs:int at the bottom; text beside them",
        cast_object('<v:A xsi:type="ObjectType" Id="a">x<v:B xsi:type="ObjectType"><v:C xsi:type="xs:int">-2147483648</v:C>'
                    '</v:B>y</v:A>'))
xml_doc(XD, "Object_CastDeclared", "declared xmldsig elements with xsi:type: KeyName as xs:string and as "
        "xs:token, KeyInfo as its own type, ds:Object itself cast to ObjectType",
        cast_object('<KeyName xsi:type="xs:string">k</KeyName><KeyName xsi:type="xs:token">t</KeyName>'
                    '<KeyInfo xsi:type="KeyInfoType" Id="x"><KeyName>k2</KeyName></KeyInfo>',
                    ' xsi:type="ObjectType"'))
xml_doc(XF, "SignedInfo_TransformCasts", "SignedInfo whose Transform carries cast open content (xs:int, "
        "base64Binary, TransformType) between text",
        f'<SignedInfo {_CAST_NS}><CanonicalizationMethod Algorithm="{C14N_EXI}"/>'
        f'<SignatureMethod Algorithm="{ECDSA_SHA512}"/><Reference URI="#id1"><Transforms>'
        f'<Transform Algorithm="{C14N_EXI}"><v:Depth xsi:type="xs:int">5</v:Depth>t'
        f'<v:Salt xsi:type="xs:base64Binary">{b64(16, 7)}</v:Salt><XPath xsi:type="xs:string">/x</XPath>'
        f'<v:Inner xsi:type="TransformType" Algorithm="urn:example:t"><XPath>b</XPath></v:Inner></Transform>'
        f'</Transforms><DigestMethod Algorithm="{SHA512}"/><DigestValue>{b64(64, 8)}</DigestValue></Reference></SignedInfo>')
xml_doc(C, "SessionStopReq_SignedObjectCasts", "a -20 message whose header Signature carries a ds:Object with "
        "-20 typed content: a cast to ct:RationalNumberType, xs:unsignedLong, a MessageHeaderType cast of ct:Header "
        "and a whole SessionStopReq cast to its own type",
        f'<SessionStopReq xmlns="urn:iso:std:iso:15118:-20:CommonMessages" '
        f'xmlns:ct="urn:iso:std:iso:15118:-20:CommonTypes" xmlns:ds="{DSN}" xmlns:xsi="{XSI}" xmlns:xs="{XS}" '
        f'xmlns:v="urn:example:vendor"><ct:Header><ct:SessionID>{SID}</ct:SessionID><ct:TimeStamp>{T0}</ct:TimeStamp>'
        f'<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{C14N_EXI}"/>'
        f'<ds:SignatureMethod Algorithm="{ECDSA_SHA512}"/><ds:Reference URI="#id1"><ds:DigestMethod Algorithm="{SHA512}"/>'
        f'<ds:DigestValue>{b64(64, 9)}</ds:DigestValue></ds:Reference></ds:SignedInfo>'
        f'<ds:SignatureValue>{b64(132, 10)}</ds:SignatureValue><ds:Object>'
        f'<v:Power xsi:type="ct:RationalNumberType"><ct:Exponent>3</ct:Exponent><ct:Value>-7</ct:Value></v:Power>'
        f'<v:Meter xsi:type="xs:unsignedLong">{T0}</v:Meter>'
        f'<ct:Header xsi:type="ct:MessageHeaderType"><ct:SessionID>{SID}</ct:SessionID><ct:TimeStamp>5</ct:TimeStamp></ct:Header>'
        f'<SessionStopReq xsi:type="SessionStopReqType"><ct:Header><ct:SessionID>{SID}</ct:SessionID>'
        f'<ct:TimeStamp>6</ct:TimeStamp></ct:Header><ChargingSession>Pause</ChargingSession></SessionStopReq>'
        f'</ds:Object></ds:Signature></ct:Header><ChargingSession>Terminate</ChargingSession></SessionStopReq>')

# ---------------------------------------------------------------------------------------------
# AC (urn:iso:std:iso:15118:-20:AC): 240 V split phase, 48 A, 11.52 kW, 60 Hz
# ---------------------------------------------------------------------------------------------

A = "ac"


def ac_cpd_req(bpt: bool) -> N:
    body = [rn("EVMaximumChargePower", 11520), rn("EVMinimumChargePower", 1440)]
    if bpt:
        body += [rn("EVMaximumDischargePower", 11520), rn("EVMinimumDischargePower", 144, 1)]
    return E("BPT_AC_CPDReqEnergyTransferMode" if bpt else "AC_CPDReqEnergyTransferMode", body)


def ac_cpd_res(bpt: bool) -> N:
    body = [rn("EVSEMaximumChargePower", 1152, 1), rn("EVSEMinimumChargePower", 1440),
            rn("EVSENominalFrequency", 60), rn("MaximumPowerAsymmetry", 0),
            rn("EVSEPowerRampLimitation", 1000), rn("EVSEPresentActivePower", 0)]
    if bpt:
        body += [rn("EVSEMaximumDischargePower", 1152, 1), rn("EVSEMinimumDischargePower", 1440)]
    return E("BPT_AC_CPDResEnergyTransferMode" if bpt else "AC_CPDResEnergyTransferMode", body)


doc(A, "AC_ChargeParameterDiscoveryReq", "AC, 11.52 kW max, 1.44 kW min (6 A at 240 V)",
    E("AC_ChargeParameterDiscoveryReq", header(14), ac_cpd_req(False)))
doc(A, "AC_ChargeParameterDiscoveryReq_BPT", "AC_BPT: 11.52 kW charge and export",
    E("AC_ChargeParameterDiscoveryReq", header(14), ac_cpd_req(True)))
doc(A, "AC_ChargeParameterDiscoveryReq_3Phase", "three-phase limits with _L2/_L3 (per-phase), exponent 3",
    E("AC_ChargeParameterDiscoveryReq", header(14),
      E("AC_CPDReqEnergyTransferMode", rn("EVMaximumChargePower", 37, 2), rn("EVMaximumChargePower_L2", 37, 2),
        rn("EVMaximumChargePower_L3", 37, 2), rn("EVMinimumChargePower", 1, 3), rn("EVMinimumChargePower_L2", 1, 3),
        rn("EVMinimumChargePower_L3", 1, 3))))
doc(A, "AC_ChargeParameterDiscoveryRes", "EVSE 11.52 kW, 60 Hz",
    E("AC_ChargeParameterDiscoveryRes", header(15), E("ResponseCode", "OK"), ac_cpd_res(False)))
doc(A, "AC_ChargeParameterDiscoveryRes_BPT", "AC_BPT EVSE limits incl. discharge",
    E("AC_ChargeParameterDiscoveryRes", header(15), E("ResponseCode", "OK"), ac_cpd_res(True)))


def display(full: bool = True) -> N:
    if not full:
        return E("DisplayParameters", E("PresentSOC", 55))
    return E("DisplayParameters", E("PresentSOC", 55), E("MinimumSOC", 30), E("TargetSOC", 80),
             E("MaximumSOC", 100), E("RemainingTimeToMinimumSOC", 0), E("RemainingTimeToTargetSOC", 5400),
             E("RemainingTimeToMaximumSOC", 9000), E("ChargingComplete", "false"),
             rn("BatteryEnergyCapacity", 82, 3), E("InletHot", "false"))


def ac_cl_req(mode: str) -> N:
    if mode == "Scheduled":
        cm = E("Scheduled_AC_CLReqControlMode", rn("EVTargetEnergyRequest", 35, 3),
               rn("EVMaximumChargePower", 11520), rn("EVMinimumChargePower", 1440),
               rn("EVPresentActivePower", 11498), rn("EVPresentReactivePower", -120))
    elif mode == "BPT_Scheduled":
        cm = E("BPT_Scheduled_AC_CLReqControlMode", rn("EVPresentActivePower", -11490),
               rn("EVMaximumDischargePower", 11520), rn("EVMinimumDischargePower", 1440))
    elif mode == "Dynamic":
        cm = E("Dynamic_AC_CLReqControlMode", E("DepartureTime", 25200), rn("EVTargetEnergyRequest", 35, 3),
               rn("EVMaximumEnergyRequest", 50, 3), rn("EVMinimumEnergyRequest", 8, 3),
               rn("EVMaximumChargePower", 11520), rn("EVMinimumChargePower", 1440),
               rn("EVPresentActivePower", 11498), rn("EVPresentReactivePower", 0))
    else:
        cm = E("BPT_Dynamic_AC_CLReqControlMode", E("DepartureTime", 25200), rn("EVTargetEnergyRequest", 35, 3),
               rn("EVMaximumEnergyRequest", 50, 3), rn("EVMinimumEnergyRequest", -12, 3),
               rn("EVMaximumChargePower", 11520), rn("EVMinimumChargePower", 1440),
               rn("EVPresentActivePower", -11490), rn("EVPresentReactivePower", 0),
               rn("EVMaximumDischargePower", 11520), rn("EVMinimumDischargePower", 1440),
               rn("EVMaximumV2XEnergyRequest", 42, 3), rn("EVMinimumV2XEnergyRequest", -18, 3))
    return cm


def ac_cl_res(mode: str) -> N:
    if mode == "Scheduled":
        return E("Scheduled_AC_CLResControlMode", rn("EVSETargetActivePower", 11520),
                 rn("EVSEPresentActivePower", 11498))
    if mode == "BPT_Scheduled":
        return E("BPT_Scheduled_AC_CLResControlMode", rn("EVSETargetActivePower", -11520),
                 rn("EVSETargetReactivePower", 0), rn("EVSEPresentActivePower", -11490))
    if mode == "Dynamic":
        return E("Dynamic_AC_CLResControlMode", E("DepartureTime", 25200), E("MinimumSOC", 30), E("TargetSOC", 80),
                 E("AckMaxDelay", 30), rn("EVSETargetActivePower", 7680), rn("EVSEPresentActivePower", 7650))
    return E("BPT_Dynamic_AC_CLResControlMode", E("MinimumSOC", 30), rn("EVSETargetActivePower", -11520),
             rn("EVSETargetReactivePower", -5, 2), rn("EVSEPresentActivePower", -11490))


for mode in ("Scheduled", "Dynamic", "BPT_Scheduled", "BPT_Dynamic"):
    doc(A, f"AC_ChargeLoopReq_{mode}", f"AC charge loop, {mode} control mode"
        + (", display parameters incl. minimum SOC reserve" if mode.endswith("Dynamic") else ""),
        E("AC_ChargeLoopReq", header(30), display(mode.endswith("Dynamic")) if mode != "Scheduled" else None,
          E("MeterInfoRequested", "true" if mode == "Scheduled" else "false"), ac_cl_req(mode)))
    doc(A, f"AC_ChargeLoopRes_{mode}", f"AC charge loop response, {mode} control mode",
        E("AC_ChargeLoopRes", header(31), E("ResponseCode", "OK"),
          E("EVSEStatus", E("NotificationMaxDelay", 0), E("EVSENotification", "ExitStandby"))
          if mode == "Dynamic" else None,
          meter_info(mode == "BPT_Scheduled") if mode in ("Scheduled", "BPT_Scheduled") else None,
          receipt() if mode == "BPT_Scheduled" else None,
          rn("EVSETargetFrequency", 600, -1) if mode.startswith("BPT") else None, ac_cl_res(mode)))

# ---------------------------------------------------------------------------------------------
# DC (urn:iso:std:iso:15118:-20:DC): 800 V class battery
# ---------------------------------------------------------------------------------------------

D = "dc"


def dc_cpd_req(bpt: bool, soc: bool = True) -> N:
    body = [rn("EVMaximumChargePower", 2700, 2), rn("EVMinimumChargePower", 0), rn("EVMaximumChargeCurrent", 500),
            rn("EVMinimumChargeCurrent", 0), rn("EVMaximumVoltage", 8750, -1), rn("EVMinimumVoltage", 550),
            E("TargetSOC", 80) if soc else None]
    if bpt:
        body += [rn("EVMaximumDischargePower", 115, 2), rn("EVMinimumDischargePower", 0),
                 rn("EVMaximumDischargeCurrent", 150), rn("EVMinimumDischargeCurrent", 0)]
    return E("BPT_DC_CPDReqEnergyTransferMode" if bpt else "DC_CPDReqEnergyTransferMode", body)


def dc_cpd_res(bpt: bool) -> N:
    body = [rn("EVSEMaximumChargePower", 3500, 2), rn("EVSEMinimumChargePower", 0),
            rn("EVSEMaximumChargeCurrent", 500), rn("EVSEMinimumChargeCurrent", 0), rn("EVSEMaximumVoltage", 1000),
            rn("EVSEMinimumVoltage", 150), rn("EVSEPowerRampLimitation", 50, 2) if not bpt else None]
    if bpt:
        body += [rn("EVSEMaximumDischargePower", 115, 2), rn("EVSEMinimumDischargePower", 0),
                 rn("EVSEMaximumDischargeCurrent", 150), rn("EVSEMinimumDischargeCurrent", 0)]
    return E("BPT_DC_CPDResEnergyTransferMode" if bpt else "DC_CPDResEnergyTransferMode", body)


doc(D, "DC_ChargeParameterDiscoveryReq", "800 V class: 270 kW, 500 A, 875.0 V max, target SOC 80 %",
    E("DC_ChargeParameterDiscoveryReq", header(14), dc_cpd_req(False)))
doc(D, "DC_ChargeParameterDiscoveryReq_BPT", "DC_BPT: 11.5 kW export, 150 A discharge, no TargetSOC",
    E("DC_ChargeParameterDiscoveryReq", header(14), dc_cpd_req(True, soc=False)))
doc(D, "DC_ChargeParameterDiscoveryRes", "EVSE 350 kW, 150-1000 V, ramp limitation",
    E("DC_ChargeParameterDiscoveryRes", header(15), E("ResponseCode", "OK"), dc_cpd_res(False)))
doc(D, "DC_ChargeParameterDiscoveryRes_BPT", "DC_BPT EVSE limits",
    E("DC_ChargeParameterDiscoveryRes", header(15), E("ResponseCode", "OK"), dc_cpd_res(True)))
doc(D, "DC_CableCheckReq", "empty body", E("DC_CableCheckReq", header(22)))
doc(D, "DC_CableCheckRes_Ongoing", "Ongoing", E("DC_CableCheckRes", header(23), E("ResponseCode", "OK"),
                                                E("EVSEProcessing", "Ongoing")))
doc(D, "DC_CableCheckRes", "Finished", E("DC_CableCheckRes", header(24), E("ResponseCode", "OK"),
                                         E("EVSEProcessing", "Finished")))
doc(D, "DC_PreChargeReq", "precharge to 812.4 V (exponent -1), present 0 V",
    E("DC_PreChargeReq", header(25), E("EVProcessing", "Ongoing"), rn("EVPresentVoltage", 0),
      rn("EVTargetVoltage", 8124, -1)))
doc(D, "DC_PreChargeRes", "EVSE at 811.95 V (exponent -2)",
    E("DC_PreChargeRes", header(26), E("ResponseCode", "OK"), rn("EVSEPresentVoltage", 8120, -1)))
doc(D, "DC_PreChargeReq_Finished", "Finished, negative exponent -3",
    E("DC_PreChargeReq", header(27), E("EVProcessing", "Finished"), rn("EVPresentVoltage", 812, 0),
      rn("EVTargetVoltage", 8124, -1)))


def dc_cl_req(mode: str) -> N:
    if mode == "Scheduled":
        return E("Scheduled_DC_CLReqControlMode", rn("EVTargetEnergyRequest", 452, 2),
                 rn("EVTargetCurrent", 3200, -1), rn("EVTargetVoltage", 8200, -1),
                 rn("EVMaximumChargePower", 2700, 2), rn("EVMaximumVoltage", 875))
    if mode == "BPT_Scheduled":
        return E("BPT_Scheduled_DC_CLReqControlMode", rn("EVTargetCurrent", -140), rn("EVTargetVoltage", 780),
                 rn("EVMaximumDischargePower", 115, 2), rn("EVMinimumDischargePower", 0),
                 rn("EVMaximumDischargeCurrent", 150))
    if mode == "Dynamic":
        return E("Dynamic_DC_CLReqControlMode", E("DepartureTime", 3600), rn("EVTargetEnergyRequest", 452, 2),
                 rn("EVMaximumEnergyRequest", 60, 3), rn("EVMinimumEnergyRequest", 1, 3),
                 rn("EVMaximumChargePower", 2700, 2), rn("EVMinimumChargePower", 0),
                 rn("EVMaximumChargeCurrent", 500), rn("EVMaximumVoltage", 875), rn("EVMinimumVoltage", 550))
    return E("BPT_Dynamic_DC_CLReqControlMode", rn("EVTargetEnergyRequest", 452, 2),
             rn("EVMaximumEnergyRequest", 60, 3), rn("EVMinimumEnergyRequest", -20, 3),
             rn("EVMaximumChargePower", 2700, 2), rn("EVMinimumChargePower", 0), rn("EVMaximumChargeCurrent", 500),
             rn("EVMaximumVoltage", 875), rn("EVMinimumVoltage", 550), rn("EVMaximumDischargePower", 115, 2),
             rn("EVMinimumDischargePower", 0), rn("EVMaximumDischargeCurrent", 150),
             rn("EVMaximumV2XEnergyRequest", 42, 3), rn("EVMinimumV2XEnergyRequest", -18, 3))


def dc_cl_res(mode: str) -> N:
    if mode == "Scheduled":
        return E("Scheduled_DC_CLResControlMode", rn("EVSEMaximumChargePower", 3500, 2),
                 rn("EVSEMaximumChargeCurrent", 500), rn("EVSEMaximumVoltage", 1000))
    if mode == "BPT_Scheduled":
        return E("BPT_Scheduled_DC_CLResControlMode", rn("EVSEMaximumDischargePower", 115, 2),
                 rn("EVSEMinimumDischargePower", 0), rn("EVSEMaximumDischargeCurrent", 150),
                 rn("EVSEMinimumVoltage", 150))
    if mode == "Dynamic":
        return E("Dynamic_DC_CLResControlMode", E("DepartureTime", 3600), E("MinimumSOC", 30), E("TargetSOC", 80),
                 E("AckMaxDelay", 65535), rn("EVSEMaximumChargePower", 3500, 2), rn("EVSEMinimumChargePower", 0),
                 rn("EVSEMaximumChargeCurrent", 500), rn("EVSEMaximumVoltage", 1000))
    return E("BPT_Dynamic_DC_CLResControlMode", E("MinimumSOC", 30), rn("EVSEMaximumChargePower", 3500, 2),
             rn("EVSEMinimumChargePower", 0), rn("EVSEMaximumChargeCurrent", 500), rn("EVSEMaximumVoltage", 1000),
             rn("EVSEMaximumDischargePower", 115, 2), rn("EVSEMinimumDischargePower", 0),
             rn("EVSEMaximumDischargeCurrent", 150), rn("EVSEMinimumVoltage", 150))


for mode in ("Scheduled", "Dynamic", "BPT_Scheduled", "BPT_Dynamic"):
    doc(D, f"DC_ChargeLoopReq_{mode}", f"DC charge loop, {mode} control mode",
        E("DC_ChargeLoopReq", header(32), display(True) if mode.endswith("Dynamic") else display(False),
          E("MeterInfoRequested", "false"), rn("EVPresentVoltage", 8012, -1), dc_cl_req(mode)))
    doc(D, f"DC_ChargeLoopRes_{mode}", f"DC charge loop response, {mode} control mode",
        E("DC_ChargeLoopRes", header(33), E("ResponseCode", "OK"),
          E("EVSEStatus", E("NotificationMaxDelay", 60), E("EVSENotification", "Terminate"))
          if mode == "BPT_Dynamic" else None,
          meter_info(mode.startswith("BPT")) if mode != "Dynamic" else None,
          rn("EVSEPresentCurrent", -1395, -1 if mode.startswith("BPT") else -1) if mode.startswith("BPT")
          else rn("EVSEPresentCurrent", 3199, -1),
          rn("EVSEPresentVoltage", 8011, -1), E("EVSEPowerLimitAchieved", "false"),
          E("EVSECurrentLimitAchieved", "true" if mode == "Dynamic" else "false"),
          E("EVSEVoltageLimitAchieved", "false"), dc_cl_res(mode)))
doc(D, "DC_WeldingDetectionReq", "Ongoing", E("DC_WeldingDetectionReq", header(94), E("EVProcessing", "Ongoing")))
doc(D, "DC_WeldingDetectionRes", "EVSE present voltage 12.3 V",
    E("DC_WeldingDetectionRes", header(94), E("ResponseCode", "OK"), rn("EVSEPresentVoltage", 123, -1)))

# ---------------------------------------------------------------------------------------------
# ACDP and WPT
# ---------------------------------------------------------------------------------------------

doc("acdp", "ACDP_VehiclePositioningReq", "vehicle positioning support",
    E("ACDP_VehiclePositioningReq", header(14), E("EVMobilityStatus", "true"), E("EVPositioningSupport", "true")))
doc("acdp", "ACDP_VehiclePositioningRes", "deviations incl. negative values",
    E("ACDP_VehiclePositioningRes", header(15), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      E("EVSEPositioningSupport", "true"), E("EVRelativeXDeviation", -25), E("EVRelativeYDeviation", 12),
      E("ContactWindowXc", 150), E("ContactWindowYc", -32768), E("EVInChargePosition", "true")))
doc("acdp", "ACDP_ConnectReq", "State_C", E("ACDP_ConnectReq", header(16), E("EVElectricalChargingDeviceStatus",
                                                                            "State_C")))
doc("acdp", "ACDP_ConnectRes", "connected, pantograph in end position",
    E("ACDP_ConnectRes", header(17), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      E("EVSEElectricalChargingDeviceStatus", "State_C"), E("EVSEMechanicalChargingDeviceStatus", "EndPosition")))
doc("acdp", "ACDP_SystemStatusReq", "technical status with every optional element",
    E("ACDP_SystemStatusReq", header(40),
      E("EVTechnicalStatus", E("EVReadyToCharge", "true"), E("EVImmobilizationRequest", "true"),
        E("EVImmobilized", "true"), rn("EVWLANStrength", -67), E("EVCPStatus", "StateC"), E("EVSOC", 64),
        E("EVErrorCode", "OK_NoEVError"), E("EVTimeout", "false"))))
doc("acdp", "ACDP_SystemStatusRes", "all flags",
    E("ACDP_SystemStatusRes", header(41), E("ResponseCode", "OK"), E("EVSEMechanicalChargingDeviceStatus", "Home"),
      E("EVSEReadyToCharge", "true"), E("EVSEIsolationStatus", "Safe"), E("EVSEDisabled", "false"),
      E("EVSEUtilityInterruptEvent", "false"), E("EVSEEmergencyShutdown", "false"), E("EVSEMalfunction", "false"),
      E("EVInChargePosition", "true"), E("EVAssociationStatus", "true")))
doc("acdp", "ACDP_DisconnectReq", "State_B", E("ACDP_DisconnectReq", header(90),
                                               E("EVElectricalChargingDeviceStatus", "State_B")))
doc("wpt", "WPT_AlignmentCheckReq", "alignment check with two vendor containers (one 256 bytes, the max)",
    E("WPT_AlignmentCheckReq", header(20), E("EVProcessing", "Ongoing"), rn("TargetCoilCurrent", 125, -1),
      E("EVResultCode", "EVResultSuccess"), E("VendorSpecificDataContainer", b64(256, 81)),
      E("VendorSpecificDataContainer", b64(3, 82))))
doc("wpt", "WPT_AlignmentCheckRes", "power transmitted",
    E("WPT_AlignmentCheckRes", header(21), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      rn("PowerTransmitted", 115, 2), rn("SupplyDeviceCurrent", 32)))
doc("wpt", "WPT_ChargeLoopReq", "WPT charge loop with power-control parameters",
    E("WPT_ChargeLoopReq", header(30), display(False), E("MeterInfoRequested", "false"),
      rn("EVPCPowerRequest", 110, 2), rn("EVPCPowerOutput", 108, 2), E("EVPCChargeDiagnostics", "EVPCNoIssue"),
      rn("EVPCOperatingFrequency", 85, 3),
      E("EVPCPowerControlParameter", rn("EVPCCoilCurrentRequest", 30), rn("EVPCCoilCurrentInformation", 29),
        rn("EVPCCurrentOutputInformation", 27), rn("EVPCVoltageOutputInformation", 400))))

doc("acdp", "ACDP_DisconnectRes", "disconnected, pantograph moving home",
    E("ACDP_DisconnectRes", header(91), E("ResponseCode", "OK"), E("EVSEProcessing", "Ongoing"),
      E("EVSEElectricalChargingDeviceStatus", "State_A"), E("EVSEMechanicalChargingDeviceStatus", "Moving")))
doc("wpt", "WPT_ChargeParameterDiscoveryReq", "11 kW receivable, ground clearance, local control",
    E("WPT_ChargeParameterDiscoveryReq", header(14), rn("EVPCMaxReceivablePower", 110, 2),
      E("SDMaxGroundClearence", 250), E("SDMinGroundClearence", 100), rn("EVPCNaturalFrequency", 85, 3),
      E("EVPCDeviceLocalControl", "false")))
doc("wpt", "WPT_ChargeParameterDiscoveryRes", "MF-WPT3 supply device",
    E("WPT_ChargeParameterDiscoveryRes", header(15), E("ResponseCode", "OK"), E("PDInputPowerClass", "MF-WPT3"),
      rn("SDMinOutputPower", 0), rn("SDMaxOutputPower", 11, 3), E("SDMaxGroundClearanceSupport", 250),
      E("SDMinGroundClearanceSupport", 100), rn("PDMinCoilCurrent", 5), rn("PDMaxCoilCurrent", 650, -1),
      E("SDManufacturerSpecificDataContainer", b64(16, 83))))
doc("wpt", "WPT_ChargeLoopRes", "WPT charge loop response with meter info",
    E("WPT_ChargeLoopRes", header(31), E("ResponseCode", "OK"), meter_info(False), rn("EVPCPowerRequest", 110, 2),
      rn("SDPowerInput", 116, 2), rn("SPCMaxOutputPowerLimit", 11, 3), rn("SPCMinOutputPowerLimit", 0),
      E("SPCChargeDiagnostics", "SPCNoIssue"), rn("SPCOperatingFrequency", 85, 3)))
doc("wpt", "WPT_PairingReq", "pairing with observed ID code",
    E("WPT_PairingReq", header(16), E("EVProcessing", "Finished"), E("ObservedIDCode", 4711),
      E("EVResultCode", "EVResultSuccess")))
doc("wpt", "WPT_PairingRes", "pairing response with two alternative SECCs",
    E("WPT_PairingRes", header(17), E("ResponseCode", "OK"), E("EVSEProcessing", "Finished"),
      E("ObservedIDCode", 4711),
      E("AlternativeSECCList",
        E("AlternativeSECC", E("SSID", "WPT-PAD-07"), E("BSSID", "0A1B2C3D4E5F"), E("IPAddress", "fe80::1"),
          E("Port", 50000)),
        E("AlternativeSECC", E("IPAddress", "fe80:0000:0000:0000:0a1b:2cff:fe3d:4e5f"), E("Port", 65535)))))



def coord(name: str, x: int, y: int, z: int) -> N:
    return E(name, E("Coord_X", x), E("Coord_Y", y), E("Coord_Z", z))


def methods() -> list[N]:
    return [E("EVDeviceFinePositioningMethodList", E("WPT_FinePositioningMethod", "LF_TxEV"),
              E("WPT_FinePositioningMethod", "Manual")),
            E("EVDevicePairingMethodList", E("WPT_PairingMethod", "External confirmation"),
              E("WPT_PairingMethod", "LPE")),
            E("EVDeviceAlignmentCheckMethodList", E("WPT_AlignmentCheckMethod", "PowerCheck"))]


doc("wpt", "WPT_FinePositioningSetupReq", "LF transmitter setup with 2 transmitters; an enumeration value "
    "with a blank (External confirmation)",
    E("WPT_FinePositioningSetupReq", header(18), E("EVProcessing", "Finished"), methods(),
      E("NaturalOffset", 30),
      E("LF_SystemSetupData",
        E("LF_TransmitterSetupData", E("NumberOfTransmitters", 2), rn("SignalFrequency", 125, 3),
          E("TxSpecData", E("TxRxIdentifier", 1), coord("TxRxPosition", -400, 900, 350),
            coord("TxRxOrientation", 0, 0, 1)),
          E("TxSpecData", E("TxRxIdentifier", 2), coord("TxRxPosition", 400, 900, 350),
            coord("TxRxOrientation", 0, 0, -1)),
          E("TxPackageSpecData",
            E("PulseSequenceOrder", E("IndexNumber", 0), E("TxRxIdentifier", 1)),
            E("PulseSequenceOrder", E("IndexNumber", 1), E("TxRxIdentifier", 2)),
            E("PulseSeparationTime", 10), E("PulseDuration", 5), E("PackageSeparationTime", 100))))))
doc("wpt", "WPT_FinePositioningSetupRes", "primary device methods, no LF setup data",
    E("WPT_FinePositioningSetupRes", header(19), E("ResponseCode", "OK"),
      E("PrimaryDeviceFinePositioningMethodList", E("WPT_FinePositioningMethod", "LF_TxEV")),
      E("PrimaryDevicePairingMethodList", E("WPT_PairingMethod", "External confirmation")),
      E("PrimaryDeviceAlignmentCheckMethodList", E("WPT_AlignmentCheckMethod", "PowerCheck"),
        E("WPT_AlignmentCheckMethod", "Proprietary")),
      E("NaturalOffset", 30)))
doc("wpt", "WPT_FinePositioningReq", "EV reports transmitter EIRP in one LF data package",
    E("WPT_FinePositioningReq", header(20), E("EVProcessing", "Ongoing"), E("EVResultCode", "EVResultUnknown"),
      E("WPT_LF_DataPackageList", E("NumPackages", 1),
        E("WPT_LF_DataPackage", E("PackageIndex", 0),
          E("LF_TxData", E("WPT_LF_TxDataList", E("TxIdentifier", 1), rn("EIRP", -35, -1)))))))
doc("wpt", "WPT_FinePositioningRes", "primary device reports RSSI",
    E("WPT_FinePositioningRes", header(21), E("ResponseCode", "OK"), E("EVSEProcessing", "Ongoing"),
      E("WPT_LF_DataPackageList", E("NumPackages", 1),
        E("WPT_LF_DataPackage", E("PackageIndex", 0),
          E("LF_RxData", E("WPT_LF_RxDataList", E("RxIdentifier", 3),
                           E("RSSIData", E("RSSIDataList", E("TxIdentifier", 1), rn("RSSI", -612, -1)))))))))

# ---------------------------------------------------------------------------------------------
# ISO 15118-2 and DIN SPEC 70121 (V2G_Message)
# ---------------------------------------------------------------------------------------------


def pv(name: str, value: int, unit: str, mult: int = 0) -> N:
    """A -2 / DIN PhysicalValueType: value * 10^mult in unit."""
    return E(name, E("Multiplier", mult), E("Unit", unit), E("Value", value))


def v2g(hdr_sid: str, body: N, notification: N | None = None, sig: N | None = None) -> N:
    return E("V2G_Message", E("Header", E("SessionID", hdr_sid), notification, sig), E("Body", body))


doc("iso2", "SessionSetupReq", "ISO 15118-2 SessionSetupReq, EVCCID = MAC",
    v2g("00", E("SessionSetupReq", E("EVCCID", "0A1B2C3D4E5F"))))
doc("iso2", "ChargeParameterDiscoveryReq_DC", "DC_EVChargeParameter, 800 V class, multipliers",
    v2g("3B5A9C0E12D4F607", E("ChargeParameterDiscoveryReq", E("MaxEntriesSAScheduleTuple", 12),
                              E("RequestedEnergyTransferMode", "DC_extended"),
                              E("DC_EVChargeParameter", E("DepartureTime", 28800),
                                E("DC_EVStatus", E("EVReady", "true"), E("EVErrorCode", "NO_ERROR"),
                                  E("EVRESSSOC", 55)),
                                pv("EVMaximumCurrentLimit", 500, "A"), pv("EVMaximumPowerLimit", 270, "W", 3),
                                pv("EVMaximumVoltageLimit", 875, "V"), pv("EVEnergyCapacity", 82, "Wh", 3),
                                pv("EVEnergyRequest", 452, "Wh", 2), E("FullSOC", 100), E("BulkSOC", 80)))))
doc("iso2", "CurrentDemandReq", "CurrentDemandReq with negative multiplier and notification in the header",
    v2g("3B5A9C0E12D4F607",
        E("CurrentDemandReq",
          E("DC_EVStatus", E("EVReady", "true"), E("EVErrorCode", "NO_ERROR"), E("EVRESSSOC", 56)),
          pv("EVTargetCurrent", 3200, "A", -1), pv("EVMaximumVoltageLimit", 875, "V"),
          pv("EVMaximumCurrentLimit", 500, "A"), pv("EVMaximumPowerLimit", 270, "W", 3),
          E("BulkChargingComplete", "false"), E("ChargingComplete", "false"),
          pv("RemainingTimeToFullSoC", 5400, "s"), pv("RemainingTimeToBulkSoC", 3000, "s"),
          pv("EVTargetVoltage", 8200, "V", -1)),
        notification=E("Notification", E("FaultCode", "UnknownError"), E("FaultMsg", "none"))))
doc("iso2", "PowerDeliveryRes_AC", "AC_EVSEStatus in the body (substitution group member)",
    v2g("3B5A9C0E12D4F607",
        E("PowerDeliveryRes", E("ResponseCode", "OK"),
          E("AC_EVSEStatus", E("NotificationMaxDelay", 0), E("EVSENotification", "None"), E("RCD", "false")))))
doc("din", "SessionSetupReq", "DIN SPEC 70121 SessionSetupReq",
    v2g("00", E("SessionSetupReq", E("EVCCID", "0A1B2C3D4E5F"))))
doc("din", "CableCheckReq", "DIN CableCheckReq",
    v2g("3B5A9C0E12D4F607", E("CableCheckReq", E("DC_EVStatus", E("EVReady", "true"),
                                                  E("EVCabinConditioning", "false"),
                                                  E("EVRESSConditioning", "false"),
                                                  E("EVErrorCode", "NO_ERROR"), E("EVRESSSOC", 42)))))
doc("din", "CurrentDemandRes", "DIN CurrentDemandRes with DC_EVSEStatus and limits",
    v2g("3B5A9C0E12D4F607",
        E("CurrentDemandRes", E("ResponseCode", "OK"),
          E("DC_EVSEStatus", E("EVSEIsolationStatus", "Valid"), E("EVSEStatusCode", "EVSE_Ready"),
            E("NotificationMaxDelay", 0), E("EVSENotification", "None")),
          pv("EVSEPresentVoltage", 400, "V"), pv("EVSEPresentCurrent", 120, "A"),
          E("EVSECurrentLimitAchieved", "false"), E("EVSEVoltageLimitAchieved", "false"),
          E("EVSEPowerLimitAchieved", "false"), pv("EVSEMaximumVoltageLimit", 500, "V"),
          pv("EVSEMaximumCurrentLimit", 200, "A"), pv("EVSEMaximumPowerLimit", 100, "W", 3))))


# ---------------------------------------------------------------------------------------------
# Build, validate, run the oracle
# ---------------------------------------------------------------------------------------------

_QUALIFIERS: dict[str, Qualifier] = {}


def qualifier(key: str) -> Qualifier:
    """The (cached) :class:`Qualifier` of a schema key."""
    if key not in _QUALIFIERS:
        _QUALIFIERS[key] = Qualifier(key)
    return _QUALIFIERS[key]


def render(d: Doc) -> bytes:
    """The XML text of a corpus document (pretty-printed; whitespace between elements is not content)."""
    if d.xml is not None:
        return etree.tostring(etree.fromstring(d.xml), encoding="utf-8", xml_declaration=True, pretty_print=True)
    assert d.root is not None
    el = qualifier(d.key).build(d.root, fragment_local=d.fragment)
    return etree.tostring(el, encoding="utf-8", xml_declaration=True, pretty_print=True)


def validate(key: str, xml: bytes, fragment: bool) -> list[str]:
    """Schema-validation errors (empty when valid); fragment roots may be local elements."""
    schema = load_schema(key)
    root = etree.fromstring(xml)
    if root.tag in schema.maps.elements:
        return [str(e).splitlines()[0] + " " + str(getattr(e, "path", "")) for e in schema.iter_errors(xml)]
    if not fragment:
        return [f"{root.tag} is not a global element of {key}"]
    q = qualifier(key)
    decl = q._all.get(_local(root.tag))
    if decl is None or decl.name != root.tag:
        return [f"{root.tag} is not an element of {key}"]
    import xml.etree.ElementTree as ET

    return [str(e).splitlines()[0] for e in decl.iter_errors(ET.fromstring(xml))]


def main(argv: Iterable[str] | None = None) -> int:
    """Builds the corpus (or checks it with ``--check``)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="validate and compare with the oracle; write nothing")
    args = ap.parse_args(list(argv) if argv is not None else None)

    from tools.exi_oracle import Job, Oracle

    rendered: list[tuple[Doc, bytes]] = []
    failures = 0
    for d in DOCS:
        xml = render(d)
        errs = validate(d.key, xml, d.fragment)
        if errs:
            failures += 1
            print(f"INVALID {d.dir}/{d.name}: {errs[0]}", file=sys.stderr)
        rendered.append((d, xml))
    if failures:
        print(f"{failures} invalid documents", file=sys.stderr)
        return 1
    oracle = Oracle.locate()
    enc = oracle.run([Job.encode(d.key, x, d.fragment) for d, x in rendered])
    rejected = [(d, r.error) for (d, _), r in zip(rendered, enc) if not r.ok]
    for d, err in rejected:
        print(f"ORACLE REJECTED {d.dir}/{d.name}: {err}", file=sys.stderr)
    if rejected:
        return 1
    dec = oracle.run([Job.decode(d.key, r.unwrap(), d.fragment) for (d, _), r in zip(rendered, enc)])
    for (d, x), r in zip(rendered, dec):
        cmp = compare(x, r.unwrap(), d.key)
        if not cmp.equal:
            print(f"ORACLE ROUND TRIP DIFFERS {d.dir}/{d.name}: {cmp.report()}", file=sys.stderr)
            failures += 1
    if failures:
        return 1
    if args.check:
        stale = 0
        for (d, x), r in zip(rendered, enc):
            base = FIXTURES / d.dir / d.name
            if not base.with_suffix(".xml").is_file() or base.with_suffix(".xml").read_bytes() != x \
                    or base.with_suffix(".exi").read_bytes() != r.unwrap():
                print(f"STALE {d.dir}/{d.name}", file=sys.stderr)
                stale += 1
        print(f"{len(rendered)} documents valid; oracle accepted all; {stale} stale")
        return 1 if stale else 0
    wanted: set[Path] = set()
    for (d, x), r in zip(rendered, enc):
        base = FIXTURES / d.dir / d.name
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".xml").write_bytes(x)
        base.with_suffix(".exi").write_bytes(r.unwrap())
        wanted |= {base.with_suffix(".xml"), base.with_suffix(".exi")}
    for sub in FIXTURES.iterdir():
        if sub.is_dir() and sub.name != "published":
            for f in sub.iterdir():
                if f.suffix in (".xml", ".exi") and f not in wanted:
                    f.unlink()
    write_index(rendered, enc)
    print(f"wrote {len(rendered)} documents ({len(wanted)} files) to {FIXTURES.relative_to(ROOT)}")
    return 0


def write_index(rendered: list[tuple[Doc, bytes]], enc: list[Any]) -> None:
    """Writes ``fixtures/exi/INDEX.md``: one line per document with its note and EXI size."""
    lines = ["# EXI corpus index", "", "Generated by `tools/make_fixtures.py`; do not edit by hand.", "",
             "| file | schema | fragment | EXI bytes | what it is |", "|---|---|---|---|---|"]
    for (d, _), r in zip(rendered, enc):
        lines.append(f"| `{d.dir}/{d.name}.xml` | {d.key} | {'yes' if d.fragment else 'no'} | "
                     f"{len(r.unwrap())} | {d.note} |")
    lines.append("")
    (FIXTURES / "INDEX.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
