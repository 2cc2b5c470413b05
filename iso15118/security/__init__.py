"""ISO 15118-20 security: lab PKI, certificate chain validation, TLS 1.3 contexts.

Modules (import the one you need; this package imports nothing eagerly):

* :mod:`.pki` — ``create_pki(dir, algorithm) -> PkiPaths``, ``load_pki(dir) -> PKI``:
  V2G/CPO, CPS, vehicle, OEM and MO hierarchies in secp521r1 or Ed448;
  CRL/OCSP builders for tests.
* :mod:`.validation` — ``validate_chain(...)`` raising ``CertificateChainError``
  with a ``ChainErrorReason``; eMAID extraction; SHA-512 fingerprints.
* :mod:`.tls` — ``server_context`` / ``client_context`` (-20 profile: TLS 1.3
  only, mutual authentication, -20 suites and algorithms; Josev compatibility
  profile), ``connection_info`` / ``check_peer``.
* :mod:`.algorithms` — the -20 algorithm policy.
* :mod:`.bench` — ``bench()`` timings for ``tools/bench``.
* :mod:`.cli` — ``iso15118 pki create|show``.

Decisions on the digest's open items (details in each module docstring):

* -20 algorithms (UNVERIFIED): secp521r1 + ECDSA-SHA-512 or Ed448, enforced for
  -20; P-256 only through the explicit Josev compatibility profile.
* TLS client certificate (DISAGREE): the -20 vehicle certificate chain under the
  V2G root is the default; the OEM provisioning chain (Josev) is generated too and
  accepted when the SECC is given the OEM root as an extra trust anchor.
* Host name: not checked, no SNI; SECC leaf CN = SECC ID, no subjectAltName.
"""
