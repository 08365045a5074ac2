"""``python -m conformance.shims.published_js``: the published SDK on the conformance wire."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from pathlib import Path

from conformance.shim import serve
from conformance.shims.published_js import PublishedJs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m conformance.shims.published_js", description=__doc__)
    parser.add_argument(
        "--sdk-bundle", type=Path, help="the SDK's pack/index.js (default: $CALLSIM_JS_SDK or .interop/…)"
    )
    parser.add_argument("--chromium", help="the browser to run (default: chromium on PATH)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(functools.partial(PublishedJs, sdk=args.sdk_bundle, chromium=args.chromium)))


if __name__ == "__main__":
    main()
