"""ISO 15118-2 Plug & Charge primitives: signed AuthorizationReq and contract key delivery.

Ours against ours (round trips, tampering refused), and against the independent peer: Josev's own
``shared.security`` functions, run in its venv by ``tools/peer/josev pnc`` on our -2 lab PKI's keys.
Josev's EVCC-side signature is verified by our SECC-side check and ours by Josev's; the
AuthorizationReq fragment both codecs digest is the same bytes; a key Josev encrypts we decrypt
and the other way round.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from iso15118.messages import iso2
from iso15118.security import pnc2, xmldsig
from iso15118.security.keydelivery import KeyDeliveryError, KeyDeliveryErrorReason
from iso15118.security.keydelivery2 import EncryptedContractKey2, decrypt_private_key_iso2, encrypt_private_key_iso2
from iso15118.security.pki import PKI, PkiProfile, create_pki, load_pki
from tests.peer import josev
from tests.proofs import PEER_PNC, record

CHALLENGE = bytes.fromhex("00112233445566778899aabbccddeeff")
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def pki2(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return load_pki(create_pki(tmp_path_factory.mktemp("pki2"), profile=PkiProfile.ISO2, password=b"pw").root)


def test_signed_authorization_req_round_trip_and_tampering(pki2: PKI) -> None:
    msg = pnc2.signed_authorization_req(bytes.fromhex("0102030405060708"), CHALLENGE, pki2.key("contractLeaf"))  # type: ignore[arg-type]
    back = iso2.decode(iso2.encode(msg))
    assert pnc2.verify_authorization_req(back, pki2.cert("contractLeaf"), CHALLENGE).id == "ID1"
    with pytest.raises(pnc2.ChallengeMismatch):
        pnc2.verify_authorization_req(back, pki2.cert("contractLeaf"), bytes(16))
    with pytest.raises(xmldsig.SignatureError) as info:  # another key
        pnc2.verify_authorization_req(back, pki2.cert("oemLeaf"), CHALLENGE)
    assert info.value.reason is xmldsig.SignatureErrorReason.BAD_SIGNATURE
    forged = iso2.message(back.header.session_id, iso2.AuthorizationReq(id="ID1", gen_challenge=bytes(16)),
                          signature=back.header.signature)
    with pytest.raises(xmldsig.SignatureError) as info:  # the signed element changed
        pnc2.verify_authorization_req(forged, pki2.cert("contractLeaf"), bytes(16))
    assert info.value.reason is xmldsig.SignatureErrorReason.DIGEST_MISMATCH


def test_key_delivery_round_trip_and_refusals(pki2: PKI) -> None:
    contract = pki2.key("contractLeaf")
    blob = encrypt_private_key_iso2(contract, pki2.cert("oemLeaf"))  # type: ignore[arg-type]
    assert len(blob.dh_public_key) == 65 and blob.dh_public_key[0] == 4 and len(blob.encrypted_private_key) == 48
    key = decrypt_private_key_iso2(blob, pki2.key("oemLeaf"), expected_public_key=pki2.cert("contractLeaf"))  # type: ignore[arg-type]
    assert key.public_key().public_bytes(*SPKI) == contract.public_key().public_bytes(*SPKI)
    flipped = bytearray(blob.encrypted_private_key)
    flipped[20] ^= 1
    for bad, reason in (
        (EncryptedContractKey2(blob.dh_public_key, bytes(flipped)), KeyDeliveryErrorReason.KEY_MISMATCH),
        (EncryptedContractKey2(blob.dh_public_key, blob.encrypted_private_key[:47]), KeyDeliveryErrorReason.BAD_LENGTH),
        (EncryptedContractKey2(b"\x04" + bytes(64), blob.encrypted_private_key), KeyDeliveryErrorReason.BAD_PUBLIC_KEY),
    ):
        with pytest.raises(KeyDeliveryError) as info:
            decrypt_private_key_iso2(bad, pki2.key("oemLeaf"), expected_public_key=pki2.cert("contractLeaf"))  # type: ignore[arg-type]
        assert info.value.reason is reason
    with pytest.raises(KeyDeliveryError) as info:  # the wrong static key: some other number comes out
        decrypt_private_key_iso2(blob, pki2.key("seccLeaf"),  # type: ignore[arg-type]
                                 expected_public_key=pki2.cert("contractLeaf"))
    assert info.value.reason in (KeyDeliveryErrorReason.KEY_MISMATCH, KeyDeliveryErrorReason.DECRYPTION_FAILED)


# --------------------------------------------------------------------------- the independent peer


def _josev_pnc(peer_env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(josev("pnc", *args), capture_output=True, text=True, env=peer_env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.peer
def test_josev_evcc_signature_verified_by_our_secc_and_ours_by_josev(pki2: PKI, peer_env: dict[str, str]) -> None:
    p = pki2.paths
    key_args = ("--key", str(p.key("contractLeaf")), "--password", "pw")
    theirs = _josev_pnc(peer_env, "sign-auth", *key_args, "--id", "id1", "--challenge", CHALLENGE.hex(), "--session", "0a0b0c0d0e0f1011")
    msg = iso2.decode(bytes.fromhex(str(theirs["message"])))
    req = pnc2.verify_authorization_req(msg, pki2.cert("contractLeaf"), CHALLENGE)
    # both codecs digest the same fragment bytes
    ours_fragment = _fragment(req)
    assert ours_fragment == bytes.fromhex(str(theirs["fragment"]))
    # ours, verified by Josev the way its SECC does; a forged challenge is refused by it
    mine = pnc2.signed_authorization_req(bytes.fromhex("0a0b0c0d0e0f1011"), CHALLENGE, pki2.key("contractLeaf"), ident="id1")  # type: ignore[arg-type]
    verdict = _josev_pnc(peer_env, "verify-auth", "--message", iso2.encode(mine).hex(), "--cert", str(p.cert("contractLeaf")))
    assert verdict["valid"] is True and bytes.fromhex(str(verdict["fragment"])) == ours_fragment
    forged = iso2.message(mine.header.session_id, iso2.AuthorizationReq(id="id1", gen_challenge=bytes(16)),
                          signature=mine.header.signature)
    verdict = _josev_pnc(peer_env, "verify-auth", "--message", iso2.encode(forged).hex(), "--cert", str(p.cert("contractLeaf")))
    assert verdict["valid"] is False
    record(PEER_PNC, 3)


def _fragment(req: iso2.AuthorizationReq) -> bytes:
    return xmldsig.fragment_bytes(req.to_tree(), "iso2")


@pytest.mark.peer
def test_contract_key_delivery_both_ways_with_josev(pki2: PKI, peer_env: dict[str, str]) -> None:
    p = pki2.paths
    contract_pub = pki2.cert("contractLeaf").public_key().public_bytes(*SPKI)
    # Josev (as the charger / CPS) encrypts for our EV's OEM provisioning certificate
    theirs = _josev_pnc(peer_env, "keyenc", "--recipient-cert", str(p.cert("oemLeaf")),
                        "--contract-key", str(p.key("contractLeaf")), "--password", "pw")
    blob = EncryptedContractKey2(bytes.fromhex(str(theirs["dh"])), bytes.fromhex(str(theirs["enc"])))
    key = decrypt_private_key_iso2(blob, pki2.key("oemLeaf"), expected_public_key=pki2.cert("contractLeaf"))  # type: ignore[arg-type]
    assert key.public_key().public_bytes(*SPKI) == contract_pub
    # we encrypt, Josev's EVCC-side decryption recovers the same key
    mine = encrypt_private_key_iso2(pki2.key("contractLeaf"), pki2.cert("oemLeaf"))  # type: ignore[arg-type]
    back = _josev_pnc(peer_env, "keydec", "--dh", mine.dh_public_key.hex(), "--enc", mine.encrypted_private_key.hex(),
                      "--key", str(p.key("oemLeaf")), "--password", "pw")
    assert bytes.fromhex(str(back["public_der"])) == contract_pub
    record(PEER_PNC, 2)
