"""``iso15118 exi encode|decode``: many files per process, no JVM."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Any

from iso15118.exi.errors import ExiError
from iso15118.exi.schemas import SCHEMA_FILES


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("exi", help="EXI encode / decode with the ISO 15118 schemas")
    s = p.add_subparsers(dest="exi_command", metavar="ACTION", required=True)
    for action, suffix in (("encode", ".exi"), ("decode", ".xml")):
        q = s.add_parser(action, help=f"{action} files (writes NAME{suffix} beside each input or into -o DIR)")
        q.add_argument("--schema", required=True, choices=sorted(SCHEMA_FILES), help="schema key")
        q.add_argument("--fragment", action="store_true", help="EXI fragment (e.g. for XML signatures)")
        q.add_argument("-o", "--output-dir", type=Path, help="write outputs into this folder")
        if action == "decode":
            q.add_argument("--hex", help="decode this hex string and print the XML")
            q.add_argument("--lenient", action="store_true",
                           help="keep values outside their facets that the bits carry (warned on stderr)")
        q.add_argument("files", nargs="*", type=Path)
        q.set_defaults(func=_run, exi_action=action, suffix=suffix)


def _run(args: argparse.Namespace) -> int:
    from iso15118.exi import codec

    c = codec(args.schema)
    if getattr(args, "hex", None):
        try:
            data = bytes.fromhex("".join(args.hex.split()))
        except ValueError:
            print("error: --hex is not hexadecimal", file=sys.stderr)
            return 2
        try:
            sys.stdout.write(_decode_xml(c, data, args).decode("utf-8") + "\n")
        except ExiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if not args.files:
        print("error: no input files", file=sys.stderr)
        return 2
    for f in args.files:  # a missing input stops the command before anything is written (exit 2)
        if not f.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such file" if not f.exists() else "not a file", str(f))
    failures = 0
    for f in args.files:
        out_dir = args.output_dir or f.parent
        out = out_dir / (f.stem + args.suffix)
        try:
            data = f.read_bytes()
            result = c.encode_xml(data, args.fragment) if args.exi_action == "encode" else _decode_xml(c, data, args, f)
        except (OSError, ExiError) as exc:
            print(f"{f}: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result)
    if failures:
        print(f"{failures} of {len(args.files)} files failed", file=sys.stderr)
    return 1 if failures else 0


def _decode_xml(c: Any, data: bytes, args: argparse.Namespace, name: Path | None = None) -> bytes:
    if not getattr(args, "lenient", False):
        return bytes(c.decode_xml(data, args.fragment))
    tree, warnings = c.decode_lenient(data, args.fragment)
    for w in warnings:
        print(f"{name}: warning: {w}" if name else f"warning: {w}", file=sys.stderr)
    return bytes(c.tree_to_xml(tree, args.fragment))
