"""Construction and ``from_tree`` reject what the schema forbids, naming the field."""

from __future__ import annotations

import pytest

import iso15118.messages as M
from iso15118.exi.tree import Element
from iso15118.messages import (
    AppProtocol,
    AuthorizationReq,
    DCChargeLoopReq,
    DisplayParameters,
    EIMAReqAuthorizationMode,
    EVSENotification,
    EVSEStatus,
    MessageHeader,
    MessageValidationError,
    Parameter,
    PnCAReqAuthorizationMode,
    RationalNumber,
    ResponseCode,
    ServiceDiscoveryReq,
    ServiceIDList,
    SessionSetupReq,
    SessionSetupRes,
    SignedInstallationData,
    SupportedAppProtocolReq,
)

HEADER = MessageHeader(session_id=bytes(8), time_stamp=1)
R = RationalNumber(1, 0)


def _raises(fn, path: str, reason_part: str) -> MessageValidationError:
    with pytest.raises(MessageValidationError) as info:
        fn()
    err = info.value
    assert err.field_path == path, str(err)
    assert reason_part in err.reason, str(err)
    assert str(err) == f"{err.field_path}: {err.reason}"
    assert isinstance(err, ValueError)
    return err


def test_integer_range() -> None:
    _raises(lambda: DisplayParameters(present_soc=101), "DisplayParameters.present_soc", "101 > maxInclusive 100")
    _raises(lambda: DisplayParameters(present_soc=-1), "DisplayParameters.present_soc", "-1 < minInclusive 0")
    _raises(lambda: RationalNumber(32768, 0), "RationalNumber.value", "32768 > maxInclusive 32767")
    _raises(lambda: RationalNumber(1, -129), "RationalNumber.exponent", "-129 < minInclusive -128")
    _raises(lambda: MessageHeader(session_id=bytes(8), time_stamp=2**64), "MessageHeader.time_stamp", "maxInclusive")
    _raises(lambda: MessageHeader(session_id=bytes(8), time_stamp=-1), "MessageHeader.time_stamp", "minInclusive 0")
    # boundaries are fine
    DisplayParameters(present_soc=0, target_soc=100)
    RationalNumber(-32768, 127)
    MessageHeader(session_id=bytes(8), time_stamp=2**64 - 1)


def test_types() -> None:
    _raises(lambda: RationalNumber("1", 0), "RationalNumber.value", "expected int, got str")
    _raises(lambda: RationalNumber(True, 0), "RationalNumber.value", "expected int, got bool")
    _raises(lambda: DisplayParameters(charging_complete=1), "DisplayParameters.charging_complete", "expected bool")
    _raises(lambda: SessionSetupReq(header=HEADER, evcc_id=b"abc"), "SessionSetupReq.evcc_id", "expected str")
    _raises(lambda: SessionSetupReq(header="hdr", evcc_id="x"), "SessionSetupReq.header", "expected MessageHeader")
    # bytearray is accepted and stored as bytes
    h = MessageHeader(session_id=bytearray(8), time_stamp=0)
    assert type(h.session_id) is bytes


def test_string_and_binary_lengths() -> None:
    _raises(lambda: SessionSetupReq(header=HEADER, evcc_id="x" * 256), "SessionSetupReq.evcc_id", "length 256 > maxLength 255")
    SessionSetupReq(header=HEADER, evcc_id="x" * 255)
    _raises(lambda: MessageHeader(session_id=bytes(9), time_stamp=0), "MessageHeader.session_id", "length 9 != length 8")
    _raises(
        lambda: AppProtocol(protocol_namespace="u" * 101, version_number_major=1, version_number_minor=0, schema_id=1, priority=1),
        "AppProtocol.protocol_namespace",
        "length 101 > maxLength 100",
    )


def test_enumerations() -> None:
    _raises(lambda: EVSEStatus(notification_max_delay=0, evse_notification="Stop"), "EVSEStatus.evse_notification", "not a EVSENotification value")
    _raises(lambda: EVSEStatus(notification_max_delay=0, evse_notification=3), "EVSEStatus.evse_notification", "expected EVSENotification")
    # the lexical value is accepted and converted to the member
    s = EVSEStatus(notification_max_delay=0, evse_notification="Terminate")
    assert s.evse_notification is EVSENotification.TERMINATE
    res = SessionSetupRes(header=HEADER, response_code="FAILED_SequenceError", evse_id="DE*ABC*E1")
    assert res.response_code is ResponseCode.FAILED_SEQUENCE_ERROR


def test_required_fields() -> None:
    _raises(lambda: SessionSetupReq(header=None, evcc_id="x"), "SessionSetupReq.header", "required")
    _raises(lambda: RationalNumber(None, 0), "RationalNumber.value", "required")
    with pytest.raises(TypeError):  # not passing it at all is a plain TypeError from __init__
        SessionSetupReq(header=HEADER)  # type: ignore[call-arg]


def test_list_occurrences() -> None:
    _raises(lambda: ServiceIDList(service_id=[]), "ServiceIDList.service_id", "0 items < minOccurs 1")
    _raises(lambda: ServiceIDList(service_id=list(range(17))), "ServiceIDList.service_id", "17 items > maxOccurs 16")
    _raises(lambda: ServiceIDList(service_id=[1, 70000]), "ServiceIDList.service_id[1]", "70000 > maxInclusive 65535")
    _raises(lambda: SupportedAppProtocolReq(app_protocol=[]), "SupportedAppProtocolReq.app_protocol", "minOccurs 1")
    _raises(lambda: ServiceIDList(service_id=(1, 2)), "ServiceIDList.service_id", "expected list")


def test_choice_arity() -> None:
    _raises(lambda: Parameter(name="P"), "Parameter.bool_value|byte_value|short_value|int_value|rational_number|finite_string", "exactly one of")
    _raises(
        lambda: Parameter(name="P", int_value=1, bool_value=True),
        "Parameter.bool_value|byte_value|short_value|int_value|rational_number|finite_string",
        "got 2",
    )
    Parameter(name="P", int_value=1)
    _raises(lambda: Parameter(name="P", byte_value=300), "Parameter.byte_value", "300 > maxInclusive 127")


def test_union_types() -> None:
    _raises(
        lambda: AuthorizationReq(header=HEADER, selected_authorization_service="EIM", authorization_mode=R),
        "AuthorizationReq.authorization_mode",
        "expected EIMAReqAuthorizationMode | PnCAReqAuthorizationMode",
    )
    ok = AuthorizationReq(header=HEADER, selected_authorization_service="EIM", authorization_mode=EIMAReqAuthorizationMode())
    assert ok.to_tree().children[-1].name == "EIM_AReqAuthorizationMode"
    # a control mode of the wrong family (AC in a DC message) is rejected
    ac = M.ScheduledACCLReqControlMode(ev_present_active_power=R)
    _raises(
        lambda: DCChargeLoopReq(header=HEADER, meter_info_requested=False, ev_present_voltage=R, control_mode=ac),
        "DCChargeLoopReq.control_mode",
        "expected ScheduledDCCLReqControlMode",
    )


def test_id_attribute_pattern() -> None:
    chain = M.ContractCertificateChain(certificate=b"c", sub_certificates=M.SubCertificates(certificate=[b"s"]))
    _raises(
        lambda: PnCAReqAuthorizationMode(id="1bad", gen_challenge=bytes(16), contract_certificate_chain=chain),
        "PnCAReqAuthorizationMode.id",
        "NCName",
    )
    mode = PnCAReqAuthorizationMode(id="id1", gen_challenge=bytes(16), contract_certificate_chain=chain)
    assert mode.to_tree().attrs == {"{urn:iso:std:iso:15118:-20:CommonMessages}Id": "id1"}


def test_from_tree_paths_are_nested() -> None:
    tree = SessionSetupReq(header=HEADER, evcc_id="x").to_tree()
    tree.children[0].children[0].value = bytes(9)
    _raises(lambda: SessionSetupReq.from_tree(tree), "SessionSetupReq.header.session_id", "length 9 != length 8")

    req = ServiceDiscoveryReq(header=HEADER, supported_service_ids=ServiceIDList(service_id=[1, 2]))
    tree = req.to_tree()
    tree.children[1].children[1].value = -5
    _raises(lambda: ServiceDiscoveryReq.from_tree(tree), "ServiceDiscoveryReq.supported_service_ids.service_id[1]", "-5 < minInclusive 0")

    res = M.ServiceDetailRes(
        header=HEADER,
        response_code=ResponseCode.OK,
        service_id=1,
        service_parameter_list=M.ServiceParameterList(
            parameter_set=[M.ParameterSet(parameter_set_id=1, parameter=[Parameter(name="A", int_value=1), Parameter(name="B", int_value=2)])]
        ),
    )
    tree = res.to_tree()
    tree.children[3].children[0].children[2].children[0].value = 2**31  # second Parameter's intValue
    _raises(
        lambda: M.ServiceDetailRes.from_tree(tree),
        "ServiceDetailRes.service_parameter_list.parameter_set[0].parameter[1].int_value",
        "maxInclusive 2147483647",
    )


def test_from_tree_structure_errors() -> None:
    tree = SessionSetupReq(header=HEADER, evcc_id="x").to_tree()
    del tree.children[1]
    _raises(lambda: SessionSetupReq.from_tree(tree), "SessionSetupReq.evcc_id", "required element EVCCID missing")
    tree = SessionSetupReq(header=HEADER, evcc_id="x").to_tree()
    tree.children.append(Element(M._base.NS_CM, "Bogus", value=1))
    _raises(lambda: SessionSetupReq.from_tree(tree), "SessionSetupReq", "unexpected element Bogus")
    tree = SessionSetupReq(header=HEADER, evcc_id="x").to_tree()
    tree.children.reverse()  # schema order matters
    _raises(lambda: SessionSetupReq.from_tree(tree), "SessionSetupReq.header", "required element Header missing (found EVCCID)")
    tree = SessionSetupRes(header=HEADER, response_code=ResponseCode.OK, evse_id="E").to_tree()
    tree.children[1].value = "NOT_A_CODE"
    _raises(lambda: SessionSetupRes.from_tree(tree), "SessionSetupRes.response_code", "not a ResponseCode value")
    # a choice with none of its alternatives present
    tree = SignedInstallationData(
        id="i1",
        contract_certificate_chain=M.ContractCertificateChain(certificate=b"c", sub_certificates=M.SubCertificates(certificate=[b"s"])),
        ecdh_curve="X448",
        dh_public_key=bytes(133),
        x448_encrypted_private_key=bytes(84),
    ).to_tree("SignedInstallationData", M._base.NS_CM)
    del tree.children[-1]
    _raises(
        lambda: SignedInstallationData.from_tree(tree),
        "SignedInstallationData.secp521_encrypted_private_key|x448_encrypted_private_key|tpm_encrypted_private_key",
        "one of",
    )


def test_validate_after_mutation_names_full_path() -> None:
    req = SessionSetupReq(header=MessageHeader(session_id=bytes(8), time_stamp=0), evcc_id="x")
    req.header.session_id = bytes(9)
    _raises(req.validate, "SessionSetupReq.header.session_id", "length 9 != length 8")
