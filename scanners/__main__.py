"""Command line: ``python -m scanners formats | detect FILE | parse FILE [--format NAME]``.

On bad input: exit status 2 and one line on stderr naming the file and what is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys

from scanners import registry
from scanners.base import ParseError
from scanners.loader import load_document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanners", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("formats", help="list format names")
    detect = commands.add_parser("detect", help="print the detected format of FILE")
    detect.add_argument("file")
    parse = commands.add_parser("parse", help="print one JSON object per normalised finding")
    parse.add_argument("file")
    parse.add_argument("--format", dest="format_name", choices=registry.format_names())
    args = parser.parse_args(argv)

    if args.command == "formats":
        for name in registry.format_names():
            print(name)
        return 0
    try:
        with open(args.file, "rb") as handle:
            data = handle.read()
        document = load_document(data)
        if args.command == "detect":
            print(registry.detect(document).name)
            return 0
        _, result = registry.parse_document(document, args.format_name)
    except (OSError, ParseError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"{args.file}: {message}", file=sys.stderr)
        return 2
    out = sys.stdout
    for finding in result.findings:
        out.write(json.dumps(finding.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
