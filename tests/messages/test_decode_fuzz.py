"""``iso15118.messages.decode`` keeps its promise on hostile input: only the project's typed
errors (``ExiError`` from the codec, ``MessageValidationError`` / ``MessageDecodeError`` from the
typed layer), never KeyError / AttributeError / ...; and whole bytes after a complete EXI
document are an error while the padding bits of the last byte are not.

Seeds: every stream of the reference corpus (``fixtures/exi``: -20 schemas, SupportedAppProtocol,
ISO 15118-2 and DIN ``V2G_Message`` documents, fragments), decoded under their own schema and,
mutated, under every schema.  Deterministic (seeded), CI-sized.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from iso15118 import messages as m
from iso15118.exi import SCHEMA_KEYS, ExiDecodeError, ExiError

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "exi"
MUTATIONS = 6000
TYPED = (ExiError, m.MessageValidationError)


def _seeds() -> list[tuple[str, bool, bytes]]:
    out = []
    for f in sorted(CORPUS.glob("*/*.exi")):
        folder = f.parent.name
        out.append((folder.removesuffix("-fragment"), folder.endswith("-fragment"), f.read_bytes()))
    return out


SEEDS = _seeds()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:  # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # random byte
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2 and len(b) > 1:  # cut
            del b[rng.randrange(1, len(b)):]
        elif op == 3:  # insert junk
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:  # bytes after the end
            b += rng.randbytes(rng.randint(1, 4))
        elif op == 5 and len(b) > 2:  # duplicate a slice
            i = rng.randrange(len(b) - 1)
            j = rng.randrange(i + 1, len(b))
            b[j:j] = b[i:j]
        elif b:  # delete a byte
            del b[rng.randrange(len(b))]
    return bytes(b)


def _decode(data: bytes, key: str, fragment: bool) -> None:
    if fragment:
        m.decode_fragment(data, key)
    else:
        m.decode(data, key)


def test_corpus_seeds_decode_or_give_a_typed_error() -> None:
    """Every real stream: a typed message, or (-2 / DIN, which have no typed classes) a typed error."""
    assert len(SEEDS) >= 100 and {"iso2", "din", "dc", "ac", "common", "sap"} <= {k for k, _, _ in SEEDS}
    outcomes: Counter[str] = Counter()
    for key, fragment, data in SEEDS:
        try:
            _decode(data, key, fragment)
            outcomes["typed message"] += 1
        except TYPED as exc:
            outcomes[type(exc).__name__] += 1
            assert key in ("iso2", "din") or fragment, f"{key}: a real stream failed: {exc}"
    print(f"\ncorpus: {dict(outcomes)}")
    assert outcomes["typed message"] >= 100


def test_v2g_message_of_iso2_and_din_is_typed_in_its_own_package() -> None:
    from iso15118.messages import din, iso2

    seen = set()
    for key, _fragment, data in SEEDS:
        if key in ("iso2", "din"):
            scope = iso2 if key == "iso2" else din
            assert type(m.decode(data, key)) is scope.V2GMessage
            seen.add(key)
    assert seen == {"iso2", "din"}


def test_leftover_bytes_are_an_error_padding_bits_are_not() -> None:
    key, _, data = next(s for s in SEEDS if s[0] == "common" and not s[1])
    m.decode(data, key)  # the last byte's padding bits are fine
    for extra in (b"\x00", b"\xff", b"\x00\x00\x00"):
        with pytest.raises(ExiDecodeError, match="left over"):
            m.decode(data + extra, key)


@pytest.mark.timeout(300)
def test_mutated_real_messages_raise_only_typed_errors() -> None:
    rng = random.Random(15118)
    outcomes: Counter[str] = Counter()
    escapes: list[str] = []
    for n in range(MUTATIONS):
        key, fragment, seed = SEEDS[n % len(SEEDS)]
        data = _mutate(rng, seed)
        target = key if n % 3 else rng.choice(SCHEMA_KEYS)  # a third under another schema
        try:
            _decode(data, target, fragment)
            outcomes["decoded"] += 1
        except TYPED as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - this is what the test counts
            outcomes["ESCAPE " + type(exc).__name__] += 1
            if len(escapes) < 10:
                escapes.append(f"{key}->{target} {data.hex()}: {type(exc).__name__}: {exc}")
    n_escaped = sum(v for k, v in outcomes.items() if k.startswith("ESCAPE"))
    print(f"\ntyped API fuzz: {MUTATIONS} mutated inputs, {n_escaped} untyped escapes; outcomes {dict(outcomes)}")
    assert n_escaped == 0, "\n".join(escapes)
    assert outcomes["decoded"] > 0 and sum(outcomes.values()) == MUTATIONS
