"""JSON-RPC 2.0 framing shared by the wire driver and the reference shim (PROTOCOL.md §2)."""

from __future__ import annotations

import json
from typing import Any, Final

from conformance.driver import ContractError

__all__ = ["CONTRACT_ERROR", "INTERNAL_ERROR", "INVALID_PARAMS", "METHOD_NOT_FOUND", "encode", "error_reply"]

CONTRACT_ERROR: Final = -32000
"""The implementation refused the call as the contract says; ``data`` has code/name/message/details."""
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603


def encode(message: dict[str, Any]) -> bytes:
    """One message, one line (newline-delimited JSON)."""
    return (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()


def error_reply(request_id: Any, exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error for an exception raised while serving ``request_id``."""
    if isinstance(exc, ContractError):
        error = {
            "code": CONTRACT_ERROR,
            "message": exc.message,
            "data": {"code": exc.code, "name": exc.name, "message": exc.message, "details": exc.details},
        }
    elif isinstance(exc, LookupError):
        error = {"code": METHOD_NOT_FOUND, "message": f"method not implemented: {exc}"}
    elif isinstance(exc, KeyError | TypeError | ValueError):
        error = {"code": INVALID_PARAMS, "message": f"{type(exc).__name__}: {exc}"}
    else:
        error = {"code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
