"""``iso15118 pki`` sub-commands.

``iso15118 pki create DIR [--algorithm secp521r1|ed448|both] [--profile iso20|iso2] [--validity-days N | NAME=N ...]``
writes the lab PKI of :mod:`iso15118.security.pki` (with ``both``: one PKI per
algorithm in ``DIR/secp521r1`` and ``DIR/ed448``; with ``--profile iso2`` the ISO 15118-2
hierarchy: secp256r1 / ECDSA-SHA-256, no vehicle chain).  ``--validity-days N`` sets
the lifetime of every leaf certificate, ``NAME=N`` that of one certificate
(e.g. ``seccLeaf=30``); repeatable.

``iso15118 pki show DIR`` lists the certificates of a generated PKI.

Only paths and public data are printed; keys and passwords never are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .pki import CHAINS, NOT_IN_ISO2, SPECS, Algorithm, PkiProfile, create_pki, load_pki

_LEAFS = tuple(s.name for s in SPECS if not s.profile.is_ca)


def _parse_validity(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    known = {s.name for s in SPECS}
    for value in values or []:
        name, sep, days = value.partition("=")
        if not sep:
            name, days = "", value
        try:
            n = int(days)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--validity-days: {value!r} is not N or NAME=N") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"--validity-days: {value!r} must be positive")
        if not name:
            out.update(dict.fromkeys(_LEAFS, n))
        elif name not in known:
            raise argparse.ArgumentTypeError(f"--validity-days: unknown certificate {name!r} (known: {', '.join(sorted(known))})")
        else:
            out[name] = n
    return out


def _create(args: argparse.Namespace) -> int:
    try:
        validity = _parse_validity(args.validity_days)
    except argparse.ArgumentTypeError as exc:
        print(f"iso15118 pki create: {exc}", file=sys.stderr)
        return 2
    algorithms = [Algorithm.SECP521R1, Algorithm.ED448] if args.algorithm == "both" else [Algorithm(args.algorithm)]
    profile = PkiProfile(args.profile)
    if profile is PkiProfile.ISO2:
        algorithms = [Algorithm.SECP256R1]
        if any(name in NOT_IN_ISO2 for name in validity):
            print("iso15118 pki create: a -2 PKI has no vehicle certificates", file=sys.stderr)
            return 2
    base = Path(args.dir)
    kwargs = {}
    if args.emaid:
        kwargs["emaid"] = args.emaid
    if args.secc_id:
        kwargs["secc_id"] = args.secc_id
    password = None
    if args.password_file:
        password = Path(args.password_file).read_bytes().strip()
        if not password:
            print("iso15118 pki create: empty password file", file=sys.stderr)
            return 2
    for alg in algorithms:
        target = base / alg.value if len(algorithms) > 1 else base
        if (target / "pki.json").exists() and not args.force:
            print(f"iso15118 pki create: {target} already holds a PKI (use --force)", file=sys.stderr)
            return 1
        paths = create_pki(target, alg, profile=profile, validity_days=validity, password=password, **kwargs)
        print(f"{alg.value} ({profile.value}): {paths.root}")
        for stem in CHAINS:
            if not paths.chain(stem).exists():
                continue
            print(f"  {stem:17s} {paths.chain(stem)}")
        for root in ("v2gRootCA", "oemRootCA", "moRootCA"):
            print(f"  {root:17s} {paths.cert(root)}")
        print(f"  keys              {paths.keys_dir} (leaf keys encrypted, see *Password.txt)")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        pki = load_pki(args.dir)
    except (OSError, ValueError, KeyError) as exc:
        print(f"iso15118 pki show: cannot load {args.dir}: {exc}", file=sys.stderr)
        return 1
    print(f"algorithm: {pki.algorithm.value}")
    for name, cert in pki.certs.items():
        print(f"{name:14s} {cert.not_valid_after_utc:%Y-%m-%d}  {cert.subject.rfc4514_string()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``pki`` to the top-level dispatcher."""
    pki = subparsers.add_parser("pki", help="ISO 15118-20 lab PKI (certificates, keys, chains)")
    sub = pki.add_subparsers(dest="pki_command", metavar="ACTION")
    create = sub.add_parser("create", help="generate a complete -20 (or, with --profile iso2, -2) test PKI")
    create.add_argument("dir", help="output directory")
    create.add_argument("--algorithm", choices=["secp521r1", "ed448", "both"], default="secp521r1",
                        help="-20 key algorithm (ignored with --profile iso2)")
    create.add_argument("--profile", choices=["iso20", "iso2"], default="iso20",
                        help="iso20: the -20 hierarchy; iso2: the ISO 15118-2 one (secp256r1, ECDSA-SHA-256, no vehicle chain)")
    create.add_argument(
        "--validity-days",
        action="append",
        metavar="N|NAME=N",
        help="lifetime in days of all leaf certificates (N) or of one certificate (NAME=N); repeatable",
    )
    create.add_argument("--password-file", help="use this password for all encrypted leaf keys (default: random per key)")
    create.add_argument("--emaid", help="eMAID for the contract certificate CN")
    create.add_argument("--secc-id", help="SECC ID (EVSEID) for the SECC certificate CN")
    create.add_argument("--force", action="store_true", help="overwrite an existing PKI")
    create.set_defaults(func=_create)
    show = sub.add_parser("show", help="list the certificates of a generated PKI")
    show.add_argument("dir")
    show.set_defaults(func=_show)
    pki.set_defaults(func=lambda _args: (pki.print_help(), 2)[1])
