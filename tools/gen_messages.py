#!/usr/bin/env python3
"""Generate the typed message classes ``iso15118/messages/_gen_*.py`` from the vendored XSDs.

    .venv/bin/python tools/gen_messages.py            # rewrite the committed modules
    .venv/bin/python tools/gen_messages.py --out DIR  # write into DIR instead (staleness test)

The XSDs are read once, as the codec's grammar builder reads them (``iso15118.exi.builder.
schema_model``), and every simple field's value space (integer range, length, hex / base64) is
the builder's datatype for that type, so the typed layer checks what the codec represents.  One dataclass is emitted per complex type (plus one per
global element whose type is shared with another global element), one ``StrEnum`` per
enumerated simple type.  Validation, ``to_tree`` and ``from_tree`` are emitted as straight-line
code per class.  Naming rules (documented for users in ``iso15118/messages/__init__.py``):

* class name = XSD type name without the ``Type`` suffix and without underscores
  (``DC_ChargeLoopReqType`` -> ``DCChargeLoopReq``); anonymous types take the element name
  (``supportedAppProtocolReq`` -> ``SupportedAppProtocolReq``)
* enum name = simple type name without ``Type``, leading acronym upper-cased
  (``evseNotificationType`` -> ``EVSENotification``); members are the values in UPPER_SNAKE
* a name already taken by an earlier schema gets the schema's prefix
  (SupportedAppProtocol ``responseCodeType`` -> ``AppProtocolResponseCode``)
* field name = snake_case of the element / attribute name (``EVCCID`` -> ``evcc_id``)
* substitution groups and XSD choices whose alternatives are distinct complex types become
  one union-typed field named after the common part of the element names
  (``control_mode``, ``energy_transfer_mode``, ``authorization_mode``, ``price_schedule``);
  other choices become separate optional fields whose arity is validated
* mixed / wildcard content (some xmldsig types) is kept as ``content: list[Element | str]``
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xmlschema
from xmlschema.validators import XsdAnyElement, XsdElement, XsdGroup

from iso15118.exi import datatypes as D
from iso15118.exi.builder import Builder, schema_model
from iso15118.exi.schemas import SCHEMA_FILES

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "iso15118" / "schemas"
OUT = ROOT / "iso15118" / "messages"

XS = "http://www.w3.org/2001/XMLSchema"
NS_CONST = {
    "http://www.w3.org/2000/09/xmldsig#": "NS_DS",
    "urn:iso:std:iso:15118:-20:CommonTypes": "NS_CT",
    "urn:iso:std:iso:15118:-20:CommonMessages": "NS_CM",
    "urn:iso:std:iso:15118:-20:AC": "NS_AC",
    "urn:iso:std:iso:15118:-20:DC": "NS_DC",
    "urn:iso:std:iso:15118:-20:ACDP": "NS_ACDP",
    "urn:iso:std:iso:15118:-20:WPT": "NS_WPT",
    "urn:iso:15118:2:2010:AppProtocol": "NS_SAP",
}

# (module, namespace, codec schema key, XSD file loaded for it, prefix used on name clashes, title)
MODULES: list[tuple[str, str, str, str, str, str]] = [
    ("_gen_xmldsig", "http://www.w3.org/2000/09/xmldsig#", "xmldsig",
     "iso15118_20/V2G_CI_CommonMessages.xsd", "Ds", "XML Signature (xmldsig-core-schema.xsd)"),
    ("_gen_common_types", "urn:iso:std:iso:15118:-20:CommonTypes", "common",
     "iso15118_20/V2G_CI_CommonMessages.xsd", "CT", "ISO 15118-20 CommonTypes (V2G_CI_CommonTypes.xsd)"),
    ("_gen_common_messages", "urn:iso:std:iso:15118:-20:CommonMessages", "common",
     "iso15118_20/V2G_CI_CommonMessages.xsd", "CM", "ISO 15118-20 CommonMessages (V2G_CI_CommonMessages.xsd)"),
    ("_gen_ac", "urn:iso:std:iso:15118:-20:AC", "ac",
     "iso15118_20/V2G_CI_AC.xsd", "AC", "ISO 15118-20 AC (V2G_CI_AC.xsd)"),
    ("_gen_dc", "urn:iso:std:iso:15118:-20:DC", "dc",
     "iso15118_20/V2G_CI_DC.xsd", "DC", "ISO 15118-20 DC (V2G_CI_DC.xsd)"),
    ("_gen_acdp", "urn:iso:std:iso:15118:-20:ACDP", "acdp",
     "iso15118_20/V2G_CI_ACDP.xsd", "ACDP", "ISO 15118-20 ACDP (V2G_CI_ACDP.xsd)"),
    ("_gen_wpt", "urn:iso:std:iso:15118:-20:WPT", "wpt",
     "iso15118_20/V2G_CI_WPT.xsd", "WPT", "ISO 15118-20 WPT (V2G_CI_WPT.xsd)"),
    ("_gen_sap", "urn:iso:15118:2:2010:AppProtocol", "sap",
     "V2G_CI_AppProtocol.xsd", "AppProtocol", "SupportedAppProtocol (V2G_CI_AppProtocol.xsd)"),
]
# -2 and DIN reuse the -20 names (SessionSetupReq, MessageHeader, ...): each is generated as a
# scope of its own, a package (``iso15118.messages.iso2``, ``iso15118.messages.din``) in which names
# are unique; both use the xmldsig classes of the first scope (listed first, not written again).
SCOPES: dict[str, list[tuple[str, str, str, str, str, str]]] = {"": MODULES}
for _pkg, _dir, _title, _base_ns in (
    ("iso2", "iso15118_2", "ISO 15118-2", "urn:iso:15118:2:2013"),
    ("din", "din_spec", "DIN SPEC 70121", "urn:din:70121:2012"),
):
    # MsgDef goes with MsgBody: DIN's message types extend the BodyBaseType of MsgDef, whose Body
    # holds them (a cycle two modules could not import)
    SCOPES[_pkg] = [MODULES[0]] + [
        (f"{_pkg}._gen_{_mod}", f"{_base_ns}:{_part}", _pkg, f"{_dir}/V2G_CI_MsgDef.xsd",
         _part[3:], f"{_title} {_what}")
        for _part, _mod, _what in (
            ("MsgDataTypes", "datatypes", "MsgDataTypes (V2G_CI_MsgDataTypes.xsd)"),
            ("MsgHeader", "header", "MsgHeader (V2G_CI_MsgHeader.xsd)"),
            ("MsgBody", "body", "MsgBody and MsgDef (V2G_CI_MsgBody.xsd, V2G_CI_MsgDef.xsd)"),
            ("MsgDef", "body", "MsgBody and MsgDef (V2G_CI_MsgBody.xsd, V2G_CI_MsgDef.xsd)"),
        )
    ]


# XSD built-in -> python type (value ranges and lengths come from the codec's datatypes)
BUILTINS: dict[str, str] = {
    "byte": "int",
    "short": "int",
    "int": "int",
    "long": "int",
    "unsignedByte": "int",
    "unsignedShort": "int",
    "unsignedInt": "int",
    "unsignedLong": "int",
    "integer": "int",
    "nonNegativeInteger": "int",
    "positiveInteger": "int",
    "nonPositiveInteger": "int",
    "negativeInteger": "int",
    "boolean": "bool",
    "base64Binary": "bytes",
    "hexBinary": "bytes",
    "string": "str",
    "normalizedString": "str",
    "token": "str",
    "anyURI": "str",
    "ID": "str",
    "IDREF": "str",
    "NCName": "str",
    "Name": "str",
    "QName": "str",
    "language": "str",
    "decimal": "Decimal",
    "float": "float",
    "double": "float",
    "anySimpleType": "str",
}

SNAKE_OVERRIDES = {
    "EMAID": "emaid",
    "PrioritizedEMAIDs": "prioritized_emaids",
    "XPath": "xpath",
    "X509SKI": "x509_ski",
    "X509CRL": "x509_crl",
    "EVSOC": "ev_soc",
    "EVWLANStrength": "ev_wlan_strength",
    "EVCPStatus": "ev_cp_status",
    "SSID": "ssid",
    "BSSID": "bssid",
    "SPCFODDetected": "spc_fod_detected",
    "SPCLOPDetected": "spc_lop_detected",
}
NO_ID_SPLIT = {"SSID", "BSSID", "EMAID"}
ENUM_ACRONYMS = {"evse": "EVSE", "ev": "EV", "ecdh": "ECDH", "dh": "DH", "cp": "CP", "tpm": "TPM"}
UNION_NAME_OVERRIDES = {"schedule": "price_schedule", "data": "lf_data"}
ABBREVIATIONS = {"smdt", "evppt", "cpd", "cl", "se", "as", "a"}
# RationalNumber takes (value, exponent) positionally; every other class is keyword-only.
POSITIONAL = {"RationalNumber": ["Value", "Exponent"]}
MIXINS = {"RationalNumber": ("iso15118.messages._rational", "RationalNumberMixin")}


def snake(name: str) -> str:
    """``EVMaximumChargePower`` -> ``ev_maximum_charge_power``, ``EVCCID`` -> ``evcc_id``."""
    if name in SNAKE_OVERRIDES:
        return SNAKE_OVERRIDES[name]
    s = name.replace("PnC", "PNC").replace("eMSP", "EMSP").replace("IDs", "Ids").replace("VARh", "Varh")
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([A-Z0-9]+)([A-Z][a-z])", r"\1_\2", s)
    parts = []
    for part in s.split("_"):
        if not part:
            continue
        if part.isupper() and part.endswith("ID") and len(part) > 2 and part not in NO_ID_SPLIT:
            parts.extend([part[:-2], "ID"])
        else:
            parts.append(part)
    out = "_".join(parts).lower()
    if keyword.iskeyword(out):
        out += "_"
    return out


def camel_words(name: str) -> list[str]:
    return [w for w in snake(name).split("_") if w]


def member_name(value: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]+", "_", value)
    n = snake(s).upper()
    if not n or n[0].isdigit():
        n = "V_" + n
    return n


def split_qname(qname: str) -> tuple[str, str]:
    if qname.startswith("{"):
        ns, _, local = qname[1:].partition("}")
        return ns, local
    return "", qname


def base_class_name(local: str) -> str:
    n = local[:-4] if local.endswith("Type") and len(local) > 4 else local
    n = n.replace("_", "")
    return n[0].upper() + n[1:]


def base_enum_name(local: str) -> str:
    n = local[:-4] if local.endswith("Type") and len(local) > 4 else local
    m = re.match(r"[a-z]+", n)
    if m and m.group(0) in ENUM_ACRONYMS:
        n = ENUM_ACRONYMS[m.group(0)] + n[m.end():]
    n = n.replace("_", "")
    return n[0].upper() + n[1:]


# ------------------------------------------------------------------------------------------
# intermediate representation


@dataclass
class Field:
    attr: str
    name: str
    ns: str
    kind: str  # simple enum class union attr value content
    py: str = ""  # python type name / enum / class name
    min: int = 1
    max: int | None = 1
    facets: dict[str, Any] = field(default_factory=dict)
    alts: list[tuple[str, str, str]] = field(default_factory=list)
    choice: int | None = None
    choice_min: int = 1
    choice_attrs: tuple[str, ...] = ()
    type_name: str = ""  # qualified name of the (named) simple type, for its XSD comment


@dataclass
class Cls:
    name: str
    xsd_type: str
    module: str
    key: str
    ns: str
    base: str | None = None
    fields: list[Field] = field(default_factory=list)
    element: tuple[str, str] | None = None
    abstract: bool = False
    open: bool = False
    alias_of: str | None = None
    xsd: Any = None


@dataclass
class Enum_:
    name: str
    xsd_type: str
    module: str
    values: list[str]


class OpenContent(Exception):
    """The content model does not map to fixed fields (mixed, wildcards, repeated groups)."""


class Generator:
    def __init__(self, modules: list[tuple[str, str, str, str, str, str]] = MODULES) -> None:
        self.modules = modules
        # the XSDs as the codec's grammar builder reads them (one reading, one loader)
        self.schemas: dict[str, xmlschema.XMLSchema10] = {}
        for _, _, key, xsd, _, _ in modules:
            if xsd not in self.schemas:
                entry = key if key != "xmldsig" else "common"  # xmldsig types come in through CommonMessages
                assert SCHEMA_FILES[entry][0] == xsd, (entry, xsd)
                self.schemas[xsd] = schema_model(entry)
        # the codec's datatypes (value spaces) of the simple types, from the same reading
        self.datatypes = Builder("common", schema_model("common"))
        self.classes: dict[str, Cls] = {}  # by python name
        self.class_by_type: dict[str, str] = {}  # xsd type qname -> python name
        self.enums: dict[str, Enum_] = {}
        self.enum_by_type: dict[str, str] = {}
        self.taken: set[str] = set()
        self.choice_counter = 0

    # -- XSD documentation and comments ---------------------------------------------------

    def load_docs(self) -> None:
        """``xs:documentation`` and the XML comment right before each top-level definition.

        The -20 XSDs carry no ``xs:documentation``; their comments name the message section
        (``Control Modes - Scheduled``) or explain a type (``BSSIDType: hexa-decimal ...``).
        """
        from lxml import etree

        self.docs: dict[tuple[str, str, str], str] = {}
        files = sorted(SCHEMAS.glob("iso15118_20/*.xsd")) + sorted(SCHEMAS.glob("iso15118_2/*.xsd")) + sorted(
            SCHEMAS.glob("din_spec/*.xsd")
        ) + [
            SCHEMAS / "V2G_CI_AppProtocol.xsd",
            SCHEMAS / "xmldsig-core-schema.xsd",
        ]
        parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
        for path in files:
            root = etree.parse(str(path), parser).getroot()
            tns = root.get("targetNamespace", "")
            previous = None
            for node in root:
                if isinstance(node, etree._Comment):
                    previous = node
                    continue
                if not isinstance(node.tag, str):
                    continue
                kind = etree.QName(node).localname
                name = node.get("name")
                texts = []
                if previous is not None and node.getprevious() is previous:
                    text = " ".join((previous.text or "").split())
                    structural = re.fullmatch(r"[\w]+Type(/[\w]+Type)*", text) or re.match(  # "AType/BType"
                        r"(Start|Begin|End)\b|Enumerations$", text
                    )
                    wordy = len(re.findall(r"[A-Za-z]+", text)) >= 3  # not a "Strings" section label
                    if wordy and "<" not in text and not structural:
                        texts.append(text)
                for doc in node.iterfind(f"{{{XS}}}annotation/{{{XS}}}documentation"):
                    text = " ".join("".join(doc.itertext()).split())
                    if text:
                        texts.append(text)
                if name and texts:
                    self.docs[(tns, kind, name)] = " ".join(texts)
                previous = None

    def doc_for(self, c: Cls) -> str:
        ns, local = split_qname(c.xsd_type)
        out = []
        if not c.xsd_type.startswith("#") and ns:
            text = self.docs.get((ns, "complexType", local))
            if text:
                out.append(text)
        if c.element:
            text = self.docs.get((c.element[0], "element", c.element[1]))
            if text and text not in out:
                out.append(text)
        return " ".join(out)

    # -- naming --------------------------------------------------------------------------

    def unique(self, name: str, prefix: str) -> str:
        if name in self.taken:
            name = prefix + name
        if name in self.taken:
            raise SystemExit(f"name clash: {name}")
        self.taken.add(name)
        return name

    # -- pass 1: names -------------------------------------------------------------------

    def collect(self) -> None:
        self.load_docs()
        for module, ns, key, xsd, prefix, _ in self.modules:
            schema = self.schemas[xsd]
            message_elements: dict[str, list[Any]] = {}
            for el in schema.maps.elements.values():
                if el.type.name and split_qname(el.name)[1].endswith(("Req", "Res")):
                    message_elements.setdefault(el.type.name, []).append(el)
            for qname, t in schema.maps.types.items():
                tns, local = split_qname(qname)
                if tns != ns:
                    continue
                if t.is_simple():
                    enum_values = self._enumeration(t)
                    if enum_values:
                        name = self.unique(base_enum_name(local), prefix)
                        self.enums[name] = Enum_(name, qname, module, enum_values)
                        self.enum_by_type[qname] = name
                    continue
                # a message type named unlike its one element (DIN's SessionStopType for
                # SessionStopReq) takes the element's name
                users = [e for e in message_elements.get(qname, ()) if split_qname(e.name)[0] == ns]
                own = base_class_name(local)
                if len(users) == 1 and split_qname(users[0].name)[1].replace("_", "") != own:
                    own = base_class_name(split_qname(users[0].name)[1])
                name = self.unique(own, prefix)
                self.classes[name] = Cls(name, qname, module, key, ns, xsd=t)
                self.class_by_type[qname] = name
            # global elements: anonymous types, owners, aliases
            by_type: dict[str, list[Any]] = {}
            for qname, el in schema.maps.elements.items():
                ens, local = split_qname(qname)
                if ens != ns or el.abstract or el.type.is_simple():
                    continue
                if el.type.name is None:
                    name = self.unique(base_class_name(local), prefix)
                    self.classes[name] = Cls(name, qname, module, key, ns, element=(ns, local), xsd=el.type)
                    self.class_by_type[f"#anon:{qname}"] = name
                    continue
                by_type.setdefault(el.type.name, []).append(el)
            for tname, els in by_type.items():
                owner_cls = self.classes[self.class_by_type[tname]]
                _, tlocal = split_qname(tname)
                els.sort(key=lambda e: (split_qname(e.name)[1] + "Type" != tlocal, e.name))
                owner_cls.element = (ns, split_qname(els[0].name)[1])
                for el in els[1:]:
                    local = split_qname(el.name)[1]
                    name = self.unique(base_class_name(local), prefix)
                    self.classes[name] = Cls(
                        name, tname, module, key, ns, base=owner_cls.name, element=(ns, local),
                        alias_of=owner_cls.name, xsd=el.type,
                    )

    @staticmethod
    def _enumeration(t: Any) -> list[str] | None:
        chain = t
        while chain is not None and not (chain.name or "").startswith("{%s}" % XS):
            if getattr(chain, "enumeration", None):
                return [str(v) for v in chain.enumeration]
            chain = getattr(chain, "base_type", None)
        return None

    # -- pass 2: fields ------------------------------------------------------------------

    def build(self) -> None:
        for cls in self.classes.values():
            if cls.alias_of:
                continue
            self.build_class(cls)
        for cls in self.classes.values():
            if cls.alias_of:
                owner = self.classes[cls.alias_of]
                cls.fields = owner.fields
                cls.open = owner.open

    def build_class(self, cls: Cls) -> None:
        t = cls.xsd
        cls.abstract = bool(getattr(t, "abstract", False))
        base = t.base_type
        if (
            base is not None
            and t.derivation == "extension"
            and not base.is_simple()
            and base.name in self.class_by_type
        ):
            cls.base = self.class_by_type[base.name]
        fields: list[Field] = []
        if t.has_simple_content():
            fields.append(self.simple_field("value", "", "", "value", t.content, 1, 1))
        elif t.mixed or t.has_mixed_content():
            cls.open = True
        else:
            try:
                self.walk([t.content], fields, cls, optional=False)
            except OpenContent:
                cls.open = True
                fields = []
        if cls.open:
            fields = [self.open_field(cls, t)]
        for qname, attr in t.attributes.items():
            if qname is None or attr.name is None:
                continue
            ans, local = split_qname(attr.name)
            fields.append(
                self.simple_field(snake(local), local, ans, "attr", attr.type, 1 if attr.use == "required" else 0, 1)
            )
        cls.fields = fields
        if cls.base:
            basecls = self.classes[cls.base]
            if not basecls.fields and basecls.xsd is not None and basecls.alias_of is None:
                self.build_class(basecls)
            nb = len([f for f in basecls.fields if f.kind != "attr"])
            elems = [f for f in fields if f.kind != "attr"]
            attrs = [f for f in fields if f.kind == "attr"]
            battrs = [f for f in basecls.fields if f.kind == "attr"]
            assert [f.name for f in elems[:nb]] == [f.name for f in basecls.fields if f.kind != "attr"], cls.name
            own_attrs = [a for a in attrs if a.name not in {b.name for b in battrs}]
            cls.fields = list(basecls.fields[:nb]) + elems[nb:] + battrs + own_attrs
        seen = set()
        for f in cls.fields:
            if f.attr in seen:
                raise SystemExit(f"duplicate field {cls.name}.{f.attr}")
            seen.add(f.attr)

    def open_field(self, cls: Cls, t: Any) -> Field:
        alts = []
        if t.content is not None and hasattr(t.content, "iter_elements"):
            for el in t.content.iter_elements():
                if isinstance(el, XsdElement) and not el.type.is_simple() and el.type.name in self.class_by_type:
                    ens, local = split_qname(el.name)
                    alts.append((ens, local, self.class_by_type[el.type.name]))
        names = [a[1] for a in alts]
        alts = [a for a in alts if names.count(a[1]) == 1]
        return Field("content", "", "", "content", min=0, max=None, alts=alts)

    def walk(self, group: Any, out: list[Field], cls: Cls, optional: bool) -> None:
        for p in group:
            if isinstance(p, XsdAnyElement):
                raise OpenContent
            if isinstance(p, XsdGroup):
                if p.max_occurs != 1:
                    raise OpenContent
                if p.model in ("sequence", "all"):
                    self.walk(p, out, cls, optional or p.min_occurs == 0)
                elif p.model == "choice":
                    self.choice(p, out, cls, optional or p.min_occurs == 0)
                continue
            out.append(self.element_field(p, optional))

    def element_field(self, p: XsdElement, optional: bool) -> Field:
        ns, local = split_qname(p.name)
        mn = 0 if optional else p.min_occurs
        mx = p.max_occurs
        subs = self.substitutes(p)
        if subs:
            head = p.schema.maps.elements.get(p.name, p)
            alts = [] if (head.abstract or head.type.abstract) else [(ns, local, self.type_class(p))]
            members = []
            for s in subs:
                if not (s.abstract or s.type.abstract):
                    sns, slocal = split_qname(s.name)
                    members.append((sns, slocal, self.type_class(s)))
            # Scheduled before Dynamic, plain before BPT (the order the XSDs declare them)
            members.sort(key=lambda a: ("Dynamic" in a[1], a[1].startswith("BPT"), a[1]))
            alts += members
            return Field(self.union_name([p.name]), local, ns, "union", min=mn, max=mx, alts=alts)
        if p.type.is_simple():
            return self.simple_field(snake(local), local, ns, "simple", p.type, mn, mx)
        return Field(snake(local), local, ns, "class", py=self.type_class(p), min=mn, max=mx)

    def type_class(self, el: XsdElement) -> str:
        if el.type.name is None:
            return self.class_by_type[f"#anon:{el.name}"]
        return self.class_by_type[el.type.name]

    def substitutes(self, p: XsdElement) -> list[Any]:
        groups = p.schema.maps.substitution_groups
        out: list[Any] = []

        def rec(qname: str) -> None:
            for m in groups.get(qname, ()):
                out.append(m)
                rec(m.name)

        rec(p.name)
        return out

    def union_name(self, qnames: list[str]) -> str:
        """Field name for a union: the words the element names share at their end, after the
        last ``Req`` / ``Res`` and without leading abbreviations (``Dynamic_SEReqControlMode`` /
        ``Scheduled_SEReqControlMode`` -> ``control_mode``)."""
        word_lists = [camel_words(split_qname(q)[1]) for q in qnames]
        common: list[str] = []
        for ws in zip(*[list(reversed(w)) for w in word_lists]):
            if any(w != ws[0] for w in ws):
                break
            common.insert(0, ws[0])
        if not common:
            common = word_lists[0]
        for marker in ("req", "res"):
            if marker in common:
                common = common[len(common) - common[::-1].index(marker):]
        while len(common) > 2 and common[0] in ABBREVIATIONS:
            common = common[1:]
        name = "_".join(common)
        return UNION_NAME_OVERRIDES.get(name, name)

    def choice(self, g: XsdGroup, out: list[Field], cls: Cls, optional: bool) -> None:
        alts = list(g)
        if not all(isinstance(a, XsdElement) and a.max_occurs == 1 for a in alts):
            raise OpenContent
        complex_types = [a.type.name for a in alts if not a.type.is_simple()]
        if len(complex_types) == len(alts) and len(set(complex_types)) == len(alts) and not any(
            self.substitutes(a) for a in alts
        ):
            qn = [a.name for a in alts]
            ns, local = split_qname(alts[0].name)
            out.append(
                Field(
                    self.union_name(qn), local, ns, "union", min=0 if optional else 1, max=1,
                    alts=[(*split_qname(a.name), self.type_class(a)) for a in alts],
                )
            )
            return
        self.choice_counter += 1
        group_fields = [self.element_field(a, True) for a in alts]
        attrs = tuple(f.attr for f in group_fields)
        for f in group_fields:
            f.min = 0
            f.choice = self.choice_counter
            f.choice_min = 0 if optional else 1
            f.choice_attrs = attrs
            out.append(f)

    def simple_field(self, attr: str, name: str, ns: str, kind: str, st: Any, mn: int, mx: int | None) -> Field:
        """A simple-typed field.  Its value space (integer range, length, hex / base64) is the
        codec's: the grammar builder's datatype for the same XSD simple type, so the typed
        layer checks exactly what the EXI codec can represent."""
        enum_name = None
        chain = st
        builtin = None
        while chain is not None:
            cname = chain.name or ""
            if cname.startswith("{%s}" % XS) and split_qname(cname)[1] in BUILTINS:
                builtin = split_qname(cname)[1]
                break
            if enum_name is None and cname in self.enum_by_type:
                enum_name = self.enum_by_type[cname]
            if getattr(chain, "patterns", None):
                # none of the vendored schemas has one; fail loudly rather than skip the check
                raise SystemExit(f"xs:pattern on {chain.name or attr} is not supported by this generator")
            chain = getattr(chain, "base_type", None)
        if builtin is None:
            raise SystemExit(f"no builtin for {attr} {st}")
        type_name = st.name or ""
        if enum_name:
            return Field(attr, name, ns, "enum" if kind == "simple" else kind, py=enum_name, min=mn, max=mx,
                         facets={"enum": True}, type_name=type_name)
        py = BUILTINS[builtin]
        dt = self.datatypes.datatype(st)
        facets: dict[str, Any] = {}
        if isinstance(dt, (D.StringDT, D.BinaryDT)):
            lo_len, hi_len = dt.min_length, dt.max_length
            if lo_len is not None and lo_len == hi_len:
                facets["length"] = lo_len
            else:
                if lo_len is not None and lo_len > 0:
                    facets["minLength"] = lo_len
                if hi_len is not None:
                    facets["maxLength"] = hi_len
        if isinstance(dt, D.IntegerDT):
            if dt.min is not None:
                facets["min"] = dt.min
            if dt.max is not None:
                facets["max"] = dt.max
        if isinstance(dt, D.BinaryDT) and dt.hex:
            facets["hex"] = True
        if builtin in ("ID", "NCName", "IDREF"):
            facets["ncname"] = True
        return Field(attr, name, ns, kind, py=py, min=mn, max=mx, facets=facets, type_name=type_name)


# ------------------------------------------------------------------------------------------
# emitting


def ns_expr(ns: str) -> str:
    return NS_CONST[ns] if ns in NS_CONST else repr(ns)


class Emitter:
    def __init__(self, gen: Generator) -> None:
        self.gen = gen

    def module_text(self, module: str, ns: str, key: str, title: str) -> str:
        gen = self.gen
        classes = [c for c in gen.classes.values() if c.module == module]
        enums = [e for e in gen.enums.values() if e.module == module]
        # order classes: bases before subclasses, otherwise schema-independent alphabetical
        ordered: list[Cls] = []
        done: set[str] = set()

        def add(c: Cls) -> None:
            if c.name in done:
                return
            if c.base and gen.classes[c.base].module == module:
                add(gen.classes[c.base])
            done.add(c.name)
            ordered.append(c)

        for c in sorted(classes, key=lambda c: c.name):
            add(c)
        used: set[str] = set()
        for c in ordered:
            if c.base:
                used.add(c.base)
            for f in c.fields:
                if f.kind in ("class", "enum") or (f.kind in ("attr", "value") and f.py in gen.enums):
                    used.add(f.py)
                for a in f.alts:
                    used.add(a[2])
        imports: dict[str, list[str]] = {}
        for name in sorted(used):
            owner = gen.classes[name].module if name in gen.classes else gen.enums[name].module
            if owner != module:
                imports.setdefault(owner, []).append(name)
                if name in gen.enums:
                    imports[owner].append(f"_{name}_BY_VALUE")
        mixins = sorted({MIXINS[c.name] for c in ordered if c.name in MIXINS})
        ns_used = sorted(({ns_expr(ns)} if ns in NS_CONST else set()) | {
            ns_expr(x) for c in ordered for f in c.fields for x in [f.ns] + [a[0] for a in f.alts]
            if x in NS_CONST
        } | ({ns_expr(c.element[0]) for c in ordered if c.element and c.element[0] in NS_CONST}))
        lines: list[str] = [
            f'"""Typed classes for {title}.',
            "",
            "GENERATED by tools/gen_messages.py from the vendored XSDs -- do not edit by hand.",
            '"""',
            "",
            "# fmt: off",
            "# ruff: noqa",
            "from __future__ import annotations",
            "",
            "from dataclasses import dataclass, field",
            "from decimal import Decimal",
            "from enum import StrEnum",
            "from typing import Any, ClassVar, Self",
            "",
            "from iso15118.exi.tree import Element",
            "",
            "_new = object.__new__",
            "from iso15118.messages._base import (",
            "    END,",
            "    NCNAME,",
            *[f"    {n}," for n in ns_used],
            "    FieldSpec,",
            "    MessageBase,",
            "    MessageValidationError,",
            "    choice_error,",
            "    coerce_enum,",
            "    coerce_simple,",
            "    field_path,",
            "    length_error,",
            "    missing_element,",
            "    occurs_error,",
            "    pattern_error,",
            "    range_error,",
            "    required_error,",
            "    type_error,",
            "    unexpected_element,",
            "    union_target,",
            ")",
        ]
        for mod, name in mixins:
            lines.append(f"from {mod} import {name}")
        for owner in sorted(imports, key=lambda m: [x[0] for x in gen.modules].index(m)):
            names = imports[owner]
            lines.append(f"from iso15118.messages.{owner} import (")
            lines.extend(f"    {n}," for n in names)
            lines.append(")")
        all_names = sorted([e.name for e in enums] + [c.name for c in ordered])
        lines += ["", "__all__ = ["]
        lines += [f'    "{n}",' for n in all_names]
        lines += ["]", ""]
        for e in sorted(enums, key=lambda e: e.name):
            lines += self.enum_text(e)
        for c in ordered:
            lines += self.class_text(c)
        lines += ["", "# --- element tables for unions and open content, field metadata ---", ""]
        for c in ordered:
            lines += self.tables_text(c)
        return "\n".join(lines).rstrip() + "\n"

    def enum_text(self, e: Enum_) -> list[str]:
        ns, local = split_qname(e.xsd_type)
        note = self.gen.docs.get((ns, "simpleType", local))
        out = ["", "", f"class {e.name}(StrEnum):", f'    """Enumeration ``{local}`` ({ns}).']
        if note:
            out += [""] + ["    " + x for x in textwrap.wrap(f"XSD comment: {note}", 92)]
        out += ['    """', ""]
        seen = set()
        for v in e.values:
            m = member_name(v)
            while m in seen:
                m += "_"
            seen.add(m)
            out.append(f"    {m} = {v!r}")
        out += ["", "", f"_{e.name}_BY_VALUE: dict[Any, Any] = {e.name}._value2member_map_"]
        return out

    # -- class ---------------------------------------------------------------------------

    def own_fields(self, c: Cls) -> list[Field]:
        if not c.base:
            return c.fields
        base_attrs = {f.attr for f in self.gen.classes[c.base].fields}
        return [f for f in c.fields if f.attr not in base_attrs]

    def annotation(self, f: Field) -> str:
        if f.kind == "content":
            alts = [a[2] for a in f.alts]
            return "list[" + " | ".join(alts + ["Element", "str"]) + "]"
        if f.kind == "union":
            t = " | ".join(a[2] for a in f.alts)
        else:
            t = f.py
        if f.max != 1:
            return f"list[{t}]"
        if f.min == 0:
            return f"{t} | None"
        return t

    def default(self, f: Field) -> str | None:
        if f.max != 1 or f.kind == "content":
            return "field(default_factory=list)" if f.min == 0 else None
        return "None" if f.min == 0 else None

    def describe(self, f: Field) -> str:
        if f.kind == "content":
            what = "mixed / wildcard content, children in document order"
            if f.alts:
                what += "; " + ", ".join(f"``{a[1]}`` as :class:`{a[2]}`" for a in f.alts)
            return what
        if f.kind == "attr":
            what = f"attribute ``{f.name}``"
        elif f.kind == "value":
            what = "simple content"
        elif f.kind == "union":
            what = "one of " + ", ".join(f"``{a[1]}``" for a in f.alts)
        else:
            what = f"element ``{f.name}``"
        occ = ""
        if f.max != 1:
            occ = f" [{f.min}..{f.max if f.max is not None else 'unbounded'}]"
        elif f.min == 0 and f.kind != "attr":
            occ = " (optional)"
        elif f.kind == "attr" and f.min == 0:
            occ = " (optional)"
        facets = []
        for k, v in f.facets.items():
            if k == "enum":
                continue
            if k == "min":
                facets.append(f">= {v}")
            elif k == "max":
                facets.append(f"<= {v}")
            elif k == "ncname":
                facets.append("NCName")
            elif k == "hex":
                facets.append("hexBinary")
            else:
                facets.append(f"{k} {v}")
        if f.choice is not None:
            facets.append(("at most" if f.choice_min == 0 else "exactly") + " one of " + "/".join(f.choice_attrs))
        note = ""
        if f.type_name and f.kind != "enum" and f.py not in self.gen.enums:
            tns, tlocal = split_qname(f.type_name)
            text = self.gen.docs.get((tns, "simpleType", tlocal))
            if text:
                note = f" ({text})"
        return what + occ + (", " + ", ".join(facets) if facets else "") + note

    def class_text(self, c: Cls) -> list[str]:
        gen = self.gen
        tns, tlocal = split_qname(c.xsd_type)
        bases = []
        if c.base:
            bases.append(c.base)
        if c.name in MIXINS:
            bases.append(MIXINS[c.name][1])
        if not c.base:
            bases.append("MessageBase")
        deco = "@dataclass(slots=True)" if c.name in POSITIONAL else "@dataclass(slots=True, kw_only=True)"
        out = ["", "", deco, f"class {c.name}({', '.join(bases)}):"]
        # docstring
        if c.alias_of:
            head = (f"``{c.element[1]}`` message: same content as :class:`{c.alias_of}` "
                    f"(the schema declares it with type ``{tlocal}``).")
        elif c.element:
            kind = "message" if c.element[1].endswith(("Req", "Res")) else "element"
            head = f"``{c.element[1]}`` {kind} (XSD type ``{tlocal if tns else c.element[1]}``)."
            if c.xsd.name is None:
                head = f"``{c.element[1]}`` {kind} (anonymous XSD type)."
        else:
            head = f"XSD type ``{tlocal}``."
        doc = [head, ""]
        xsd_doc = gen.doc_for(c)
        if xsd_doc:
            doc += textwrap.wrap(f"XSD comment: {xsd_doc}", 92) + [""]
        doc.append(f"Namespace ``{tns or c.ns}``.")
        if c.abstract:
            doc.append("Abstract in the schema: only its extensions appear on the wire.")
        if c.base and not c.alias_of:
            doc.append(f"Extends :class:`{c.base}` (XSD extension).")
        if c.open:
            doc.append("The content model is mixed or has wildcards, so children are kept in ``content``.")
        if c.fields:
            doc += ["", "Fields, in schema order:", ""]
            for f in c.fields:
                doc += textwrap.wrap(
                    f"* ``{f.attr}``: {self.describe(f)}", 96, subsequent_indent="  ", break_on_hyphens=False
                )
        out.append('    """' + doc[0])
        for d in doc[1:]:
            out.append(("    " + d) if d else "")
        out.append('    """')
        out.append("")
        if c.element:
            out.append(f"    ELEMENT: ClassVar[tuple[str, str] | None] = ({ns_expr(c.element[0])}, {c.element[1]!r})")
        elif c.base:
            out.append("    ELEMENT: ClassVar[tuple[str, str] | None] = None")
        out.append(f"    SCHEMA_KEY: ClassVar[str | None] = {c.key!r}")
        out.append(f"    XSD_TYPE: ClassVar[str] = {c.xsd_type if not c.xsd_type.startswith('#') else ''!r}")
        own = [] if c.alias_of else self.own_fields(c)
        if c.name in POSITIONAL:
            order = POSITIONAL[c.name]
            own = sorted(own, key=lambda f: order.index(f.name) if f.name in order else 99)
        if own:
            out.append("")
            # required fields first keeps the positional RationalNumber(value, exponent) natural
            for f in own:
                d = self.default(f)
                out.append(f"    {f.attr}: {self.annotation(f)}" + (f" = {d}" if d else ""))
        if c.alias_of:
            out += [
                "",
                f"    def to_tree(self, name: str = {c.element[1]!r}, ns: str = {ns_expr(c.element[0])}) -> Element:",
                f'        """This message as an :class:`Element` (``{c.element[1]}`` by default)."""',
                f"        return {c.alias_of}.to_tree(self, name, ns)",
            ]
            return out
        out += self.post_init_text(c)
        out += self.to_tree_text(c)
        out += self.from_tree_text(c)
        return out

    # -- validation ----------------------------------------------------------------------

    def item_checks(self, f: Field, var: str, path: str, assign: str | None, owner: str = "") -> list[str]:
        """Lines checking one value in ``var``; ``assign`` is where a coerced value goes."""
        lines: list[str] = []
        if f.kind in ("class",):
            lines.append(f"if {var}.__class__ is not {f.py} and not isinstance({var}, {f.py}):")
            lines.append(f"    raise type_error({path}, {var}, {f.py!r})")
            return lines
        if f.kind == "union":
            tup = f"_{owner}_{f.attr}_TYPES"
            lines.append(f"if {var}.__class__ not in {tup} and not isinstance({var}, {tup}):")
            lines.append(f"    raise type_error({path}, {var}, {' | '.join(a[2] for a in f.alts)!r})")
            return lines
        if f.py in self.gen.enums:
            lines.append(f"if {var}.__class__ is not {f.py}:")
            if assign:
                lines.append(f"    {assign} = {var} = coerce_enum({path}, {f.py}, {var})")
            else:
                lines.append(f"    coerce_enum({path}, {f.py}, {var})")
            return lines
        py = f.py
        if py == "bool":
            lines.append(f"if {var}.__class__ is not bool:")
            lines.append(f"    raise type_error({path}, {var}, 'bool')")
        else:
            lines.append(f"if {var}.__class__ is not {py}:")
            if assign:
                lines.append(f"    {assign} = {var} = coerce_simple({path}, {var}, {py})")
            else:
                lines.append(f"    coerce_simple({path}, {var}, {py})")
        fc = f.facets
        if py == "int":
            lo, hi = fc.get("min"), fc.get("max")
            conds = []
            if lo is not None:
                conds.append(f"{var} < {lo}")
            if hi is not None:
                conds.append(f"{var} > {hi}")
            if conds:
                lines.append(f"if {' or '.join(conds)}:")
                lines.append(f"    raise range_error({path}, {var}, {lo}, {hi})")
        if py in ("str", "bytes"):
            ln, mnl, mxl = fc.get("length"), fc.get("minLength"), fc.get("maxLength")
            conds = []
            if ln is not None:
                conds.append(f"len({var}) != {ln}")
            if mnl is not None and mnl > 0:
                conds.append(f"len({var}) < {mnl}")
            if mxl is not None:
                conds.append(f"len({var}) > {mxl}")
            if conds:
                lines.append(f"if {' or '.join(conds)}:")
                lines.append(f"    raise length_error({path}, {var}, {ln}, {mnl}, {mxl})")
            if fc.get("ncname"):
                lines.append(f"if NCNAME({var}) is None:")
                lines.append(f"    raise pattern_error({path}, {var}, 'NCName')")
        return lines

    def post_init_text(self, c: Cls) -> list[str]:
        out = ["", "    def __post_init__(self) -> None:"]
        body: list[str] = []
        choices: dict[int, list[Field]] = {}
        for f in c.fields:
            path = f"field_path(self, {f.attr!r})"
            if f.kind == "content":
                body.append(f"v = self.{f.attr}")
                body.append("if v.__class__ is not list:")
                body.append(f"    raise type_error({path}, v, 'list')")
                continue
            body.append(f"v = self.{f.attr}")
            if f.max != 1:
                lo, hi = f.min, f.max
                cond = ["v.__class__ is not list"]
                if lo > 0:
                    cond.append(f"len(v) < {lo}")
                if hi is not None:
                    cond.append(f"len(v) > {hi}")
                body.append(f"if {' or '.join(cond)}:")
                body.append(f"    raise occurs_error({path}, v, {lo}, {hi})")
                ipath = f"field_path(self, {f.attr!r}, j)"
                checks = self.item_checks(f, "it", ipath, "v[j]", c.name)
                body.append("for j, it in enumerate(v):")
                body += ["    " + x for x in checks]
            else:
                checks = self.item_checks(f, "v", path, f"self.{f.attr}", c.name)
                if f.min == 0:
                    body.append("if v is not None:")
                    body += ["    " + x for x in checks]
                else:
                    # None fails the type check below; the error then says "required"
                    body += checks
            if f.choice is not None:
                choices.setdefault(f.choice, []).append(f)
        for group in choices.values():
            attrs = tuple(f.attr for f in group)
            count = " + ".join(f"(self.{a} is not None)" for a in attrs)
            body.append(f"n = {count}")
            cond = "n > 1" if group[0].choice_min == 0 else "n != 1"
            body.append(f"if {cond}:")
            body.append(
                f"    raise choice_error(field_path(self, {'|'.join(attrs)!r}), {attrs!r}, n, "
                f"{group[0].choice_min == 0})"
            )
        if not body:
            body = ["pass"]
        elif any(x.startswith("v = ") for x in body):
            body.insert(0, "v: Any")  # one name for fields of different types (no runtime cost)
        out += ["        " + x for x in body]
        return out

    # -- to_tree -------------------------------------------------------------------------

    def to_tree_text(self, c: Cls) -> list[str]:
        if c.element:
            dname, dns = repr(c.element[1]), ns_expr(c.element[0])
        else:
            dname, dns = repr(c.name), ns_expr(c.ns)
        out = [
            "",
            f"    def to_tree(self, name: str = {dname}, ns: str = {dns}) -> Element:",
            '        """This object as an :class:`Element` named ``{ns}name`` (children in schema order)."""',
        ]
        body: list[str] = []
        attrs = [f for f in c.fields if f.kind == "attr"]
        elems = [f for f in c.fields if f.kind not in ("attr", "value")]
        value = next((f for f in c.fields if f.kind == "value"), None)
        # leading required children go straight into a list literal
        lead: list[str] = []
        rest = list(elems)
        while rest and rest[0].min == 1 and rest[0].max == 1 and rest[0].choice is None and rest[0].kind in (
            "simple", "enum", "class"
        ):
            f = rest.pop(0)
            if f.kind == "class":
                lead.append(f"self.{f.attr}.to_tree({f.name!r}, {ns_expr(f.ns)})")
            else:
                val = f"self.{f.attr}._value_" if f.kind == "enum" else f"self.{f.attr}"
                lead.append(f"Element({ns_expr(f.ns)}, {f.name!r}, None, None, {val})")
        if len(", ".join(lead)) > 60:
            literal = "[\n" + "".join(f"    {x},\n" for x in lead) + "]"
        else:
            literal = "[" + ", ".join(lead) + "]"
        if not rest and lead:
            ch_expr = literal
        elif not elems:
            ch_expr = "None"
        else:
            body += ("ch: list[Element | str] = " + literal).split("\n")
            ch_expr = "ch"
        for f in rest:
            body += self.to_tree_field(c, f)
        if attrs:
            body.append("a: dict[str, Any] = {}")
            for f in attrs:
                key = f"{{{f.ns}}}{f.name}" if f.ns else f.name
                conv = ".value" if f.py in self.gen.enums else ""
                if f.min == 0:
                    body.append(f"v = self.{f.attr}")
                    body.append("if v is not None:")
                    body.append(f"    a[{key!r}] = v{conv}")
                else:
                    body.append(f"a[{key!r}] = self.{f.attr}{conv}")
            a_expr = "a"
        else:
            a_expr = "None"
        v_expr = "None"
        if value is not None:
            v_expr = "self.value" + (".value" if value.py in self.gen.enums else "")
        body.append(f"return Element(ns, name, {a_expr}, {ch_expr}, {v_expr})")
        if any(line.lstrip().startswith(("v = ", "for v in ")) for x in body for line in x.split("\n")):
            body.insert(0, "v: Any")
        out += ["        " + line for x in body for line in x.split("\n")]
        return out

    def to_tree_field(self, c: Cls, f: Field) -> list[str]:
        a = f.attr
        ns = ns_expr(f.ns)
        tbl = f"_{c.name}_{a}_OUT"
        if f.kind == "content":
            return [
                f"for v in self.{a}:",
                "    if v.__class__ is Element or v.__class__ is str:",
                "        ch.append(v)",
                "    else:",
                f"        t = {tbl}.get(v.__class__) or union_target({tbl}, v, {c.name + '.' + a!r})",
                "        ch.append(v.to_tree(t[1], t[0]))",
            ]

        def one(var: str) -> list[str]:
            if f.kind == "class":
                return [f"ch.append({var}.to_tree({f.name!r}, {ns}))"]
            if f.kind == "union":
                return [
                    f"t = {tbl}.get({var}.__class__) or union_target({tbl}, {var}, {c.name + '.' + a!r})",
                    f"ch.append({var}.to_tree(t[1], t[0]))",
                ]
            val = f"{var}._value_" if f.kind == "enum" else var
            return [f"ch.append(Element({ns}, {f.name!r}, None, None, {val}))"]

        if f.max != 1:
            return [f"for v in self.{a}:"] + ["    " + x for x in one("v")]
        if f.min == 0:
            return [f"v = self.{a}", "if v is not None:"] + ["    " + x for x in one("v")]
        if f.kind in ("class", "simple"):
            return one(f"self.{a}")
        return [f"v = self.{a}"] + one("v")

    # -- from_tree -----------------------------------------------------------------------

    def from_tree_text(self, c: Cls) -> list[str]:
        out = [
            "",
            "    @classmethod",
            "    def from_tree(cls, el: Element) -> Self:",
            '        """Build from an :class:`Element` (as produced by the EXI codec); validates."""',
        ]
        body: list[str] = []
        attrs = [f for f in c.fields if f.kind == "attr"]
        elems = [f for f in c.fields if f.kind not in ("attr", "value")]
        value = next((f for f in c.fields if f.kind == "value"), None)
        args: list[str] = []
        if elems and elems[0].kind == "content":
            f = elems[0]
            tbl = f"_{c.name}_{f.attr}_IN"
            body += [
                "v_content = []",
                "for c in el.children:",
                "    if c.__class__ is Element:",
                f"        k = {tbl}.get(c.name)",
                "        if k is not None:",
                "            try:",
                "                c = k.from_tree(c)",
                "            except MessageValidationError as e:",
                "                raise e.nested(cls.__name__, 'content', len(v_content)) from None",
                "    v_content.append(c)",
            ]
            args.append("content=v_content")
        elif elems:
            body += ["ch = el.children", "n = len(ch)", "i = 0", "c = ch[0] if n else END"]
            advance = ["i += 1", "c = ch[i] if i < n else END"]
            pending_choice: list[Field] = []
            groups: list[list[Field]] = []
            for f in elems:
                if f.choice is not None:
                    if pending_choice and pending_choice[0].choice == f.choice:
                        pending_choice.append(f)
                        continue
                    pending_choice = [f]
                    groups.append(pending_choice)
                else:
                    pending_choice = []
                    groups.append([f])
            for g in groups:
                if len(g) > 1 or g[0].choice is not None:
                    first = True
                    for f in g:
                        args.append(f"{f.attr}=v_{f.attr}")
                        body.append(f"v_{f.attr} = None")
                    for f in g:
                        kw = "if" if first else "elif"
                        first = False
                        body.append(f"{kw} c.name == {f.name!r}:")
                        body += ["    " + x for x in self.convert(c, f, f"v_{f.attr}", "c")]
                        body += ["    " + x for x in advance]
                    if g[0].choice_min == 1:
                        names = "one of " + ", ".join(f.name for f in g)
                        body.append("else:")
                        body.append(
                            f"    raise missing_element(cls.__name__, {'|'.join(f.attr for f in g)!r}, {names!r}, "
                            f"c if i < n else None)"
                        )
                    continue
                f = g[0]
                var = f"v_{f.attr}"
                args.append(f"{f.attr}={var}")
                if f.kind == "union":
                    tbl = f"_{c.name}_{f.attr}_IN"
                    test = f"c.name in {tbl}"
                else:
                    test = f"c.name == {f.name!r}"
                if f.max != 1:
                    body.append(f"{var} = []")
                    body.append(f"while {test}:")
                    body += ["    " + x for x in self.convert(c, f, "x", "c", index=f"len({var})")]
                    body.append(f"    {var}.append(x)")
                    body += ["    " + x for x in advance]
                    if f.min > 0:
                        pass  # occurrence counts are checked by __post_init__
                elif f.min == 0:
                    body.append(f"if {test}:")
                    body += ["    " + x for x in self.convert(c, f, var, "c")]
                    body += ["    " + x for x in advance]
                    body.append("else:")
                    body.append(f"    {var} = None")
                else:
                    body.append(f"if {test}:")
                    body += ["    " + x for x in self.convert(c, f, var, "c")]
                    body += ["    " + x for x in advance]
                    body.append("else:")
                    expected = f.name if f.kind != "union" else "one of " + ", ".join(a[1] for a in f.alts)
                    body.append(
                        f"    raise missing_element(cls.__name__, {f.attr!r}, {expected!r}, c if i < n else None)"
                    )
            body.append("if i < n:")
            body.append("    raise unexpected_element(cls.__name__, ch[i])")
        elif not value:
            body.append("if el.children:")
            body.append("    raise unexpected_element(cls.__name__, el.children[0])")
        if attrs:
            body.append("a = el.attrs")
            for f in attrs:
                key = f"{{{f.ns}}}{f.name}" if f.ns else f.name
                if f.py in self.gen.enums:
                    body.append(f"v_{f.attr} = _{f.py}_BY_VALUE.get(a.get({key!r}), a.get({key!r}))")
                else:
                    body.append(f"v_{f.attr} = a.get({key!r})")
                args.append(f"{f.attr}=v_{f.attr}")
        if value is not None:
            if value.py in self.gen.enums:
                body.append(f"v_value = _{value.py}_BY_VALUE.get(el.value, el.value)")
            elif value.py in ("str", "bytes"):
                body.append(f"v_value = el.value or {value.py}()")
            else:
                body.append("v_value = el.value")
            args.append("value=v_value")
        # build without the keyword-argument __init__ (measurably faster), then validate
        body.append("self = _new(cls)")
        for a in args:
            attr, _, var = a.partition("=")
            body.append(f"self.{attr} = {var}")
        body.append("self.__post_init__()")
        body.append("return self")
        fast = self.fast_path(c)
        # The decoded tree is untyped until __post_init__ has validated the values: declare
        # the cursor, the children and every value read as Any (annotations only, no runtime cost).
        decl: list[str] = []
        text = "\n".join(fast + body)
        if "ch = el.children" in text:
            decl.append("ch: Any")
        if re.search(r"\bc = |for c in ", text):
            decl.append("c: Any")
        for var in sorted(set(re.findall(r"\b(v_\w+) = ", text))):
            decl.append(f"{var}: Any")
        if re.search(r"\bx = ", text):
            decl.append("x: Any")
        out += ["        " + x for x in decl + fast + body]
        return out

    def fast_path(self, c: Cls) -> list[str]:
        """For all-required, fixed sequences: one length check and direct unpacking."""
        elems = [f for f in c.fields if f.kind not in ("attr", "value")]
        if not elems or c.open or any(
            f.min != 1 or f.max != 1 or f.choice is not None or f.kind not in ("simple", "enum", "class")
            for f in elems
        ) or any(f.kind in ("attr", "value") for f in c.fields):
            return []
        names = [f"c{j}" for j in range(len(elems))]
        lines = [
            "ch = el.children",
            f"if len(ch) == {len(elems)}:",
            f"    {', '.join(names)}{',' if len(names) == 1 else ''} = ch",
            "    if " + " and ".join(f"{v}.name == {f.name!r}" for v, f in zip(names, elems)) + ":",
            "        self = _new(cls)",
        ]
        for v, f in zip(names, elems):
            conv = self.convert(c, f, f"self.{f.attr}", v)
            lines += ["        " + x for x in conv]
        lines += ["        self.__post_init__()", "        return self"]
        return lines

    def convert(self, c: Cls, f: Field, target: str, src: str, index: str | None = None) -> list[str]:
        """Lines converting element ``src`` to the Python value for field ``f`` into ``target``."""
        idx = f", {index}" if index else ""
        if f.kind == "class":
            return [
                "try:",
                f"    {target} = {f.py}.from_tree({src})",
                "except MessageValidationError as e:",
                f"    raise e.nested(cls.__name__, {f.attr!r}{idx}) from None",
            ]
        if f.kind == "union":
            tbl = f"_{c.name}_{f.attr}_IN"
            return [
                "try:",
                f"    {target} = {tbl}[{src}.name].from_tree({src})",
                "except MessageValidationError as e:",
                f"    raise e.nested(cls.__name__, {f.attr!r}{idx}) from None",
            ]
        if f.kind == "enum":
            return [f"{target} = _{f.py}_BY_VALUE.get({src}.value, {src}.value)"]
        if f.py in ("str", "bytes"):
            # an empty value may come back from the codec as None (no character data)
            return [f"{target} = {src}.value or {f.py}()"]
        return [f"{target} = {src}.value"]

    # -- tables --------------------------------------------------------------------------

    def tables_text(self, c: Cls) -> list[str]:
        out: list[str] = []
        if not c.alias_of:
            for f in c.fields:
                if f.kind in ("union", "content"):
                    out.append(f"_{c.name}_{f.attr}_IN: dict[str, Any] = {{")
                    out += [f"    {a[1]!r}: {a[2]}," for a in f.alts]
                    out.append("}")
                    out.append(f"_{c.name}_{f.attr}_OUT: dict[type, tuple[str, str]] = {{")
                    out += [f"    {a[2]}: ({ns_expr(a[0])}, {a[1]!r})," for a in f.alts]
                    out.append("}")
                    if f.kind == "union":
                        out.append(f"_{c.name}_{f.attr}_TYPES = tuple(_{c.name}_{f.attr}_OUT)")
        if c.alias_of:
            return out
        out.append(f"{c.name}.FIELDS = (")
        for f in c.fields:
            py = f.py if f.kind not in ("union", "content") else "None"
            if f.kind in ("simple", "attr", "value") and f.py not in self.gen.enums:
                py = f.py
            alts = "(" + "".join(f"({ns_expr(a[0])}, {a[1]!r}, {a[2]}), " for a in f.alts) + ")"
            facets = {k: v for k, v in f.facets.items()}
            out.append(
                f"    FieldSpec({f.attr!r}, {f.name!r}, {ns_expr(f.ns) if f.ns else repr('')}, {f.kind!r}, {py}, "
                f"{f.min}, {f.max}, {facets!r}, {alts}, {f.choice}, {f.choice_min}),"
            )
        out.append(")")
        return out


def generate(out_dir: Path) -> list[Path]:
    written = []
    counts: dict[str, tuple[int, int]] = {}
    for scope, modules in SCOPES.items():
        gen = Generator(modules)
        gen.collect()
        gen.build()
        em = Emitter(gen)
        own = modules if not scope else modules[1:]  # a scope reuses the first scope's xmldsig module
        emitted: set[str] = set()
        for module, ns, key, _, _, title in own:
            if module in emitted:  # a module holding two namespaces is written once
                continue
            emitted.add(module)
            text = em.module_text(module, ns, key, title)
            path = out_dir / f"{module.replace('.', '/')}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        owned = {m[0] for m in own}
        counts[scope] = (
            sum(1 for c in gen.classes.values() if c.module in owned),
            sum(1 for e in gen.enums.values() if e.module in owned),
        )
    # registry of everything, in dependency order, for the package __init__
    reg = [
        '"""Index of the generated modules (GENERATED by tools/gen_messages.py -- do not edit)."""',
        "",
        "MODULES = (",
    ]
    reg += [f"    {m[0]!r}," for m in MODULES]
    reg += [")", ""]
    reg.append("CLASS_COUNT = %d" % counts[""][0])
    reg.append("ENUM_COUNT = %d" % counts[""][1])
    reg += ["", "SCOPED_MODULES = {"]
    for scope, modules in SCOPES.items():
        if scope:
            names = list(dict.fromkeys(m[0].partition(".")[2] for m in modules[1:]))
            reg.append(f"    {scope!r}: ({', '.join(repr(n) for n in names)}),")
    reg += ["}", "SCOPED_COUNTS = {"]
    for scope in SCOPES:
        if scope:
            reg.append(f"    {scope!r}: {counts[scope]!r},  # (classes, enums)")
    reg += ["}"]
    (out_dir / "_gen_index.py").write_text("\n".join(reg) + "\n", encoding="utf-8")
    written.append(out_dir / "_gen_index.py")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output directory (default: iso15118/messages)")
    args = ap.parse_args(argv)
    for p in generate(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
