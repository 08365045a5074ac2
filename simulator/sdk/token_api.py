"""The SDK's REST calls for call tokens (contract §G), mapped to its exceptions once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from simulator.sdk.errors import ApiError, Messages

__all__ = ["CallToken", "TokenApi"]

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass(frozen=True, slots=True)
class CallToken:
    """``generateToken``'s result: ``token`` is guaranteed, other keys kept in ``extra`` (K46)."""

    token: str
    extra: dict[str, Any] = field(default_factory=dict)


class TokenApi:
    """``POST/GET {host}call_tokens`` with the SDK's headers and error mapping."""

    def __init__(self, http: aiohttp.ClientSession, host: str) -> None:
        self._http = http
        self.host = host

    async def _call(
        self, method: str, headers: dict[str, str], body: object = None, path: str = "call_tokens"
    ) -> dict[str, Any]:
        url = f"{self.host}{path}"
        try:
            async with self._http.request(
                method,
                url,
                headers={"Accept": "application/json", **headers},
                json=body,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            payload = None
        if isinstance(payload, dict):
            if isinstance(payload.get("data"), dict | list):
                return payload
            error = payload.get("error")
            if isinstance(error, dict) and error.get("message"):
                raise ApiError(str(error.get("code")), str(error["message"]))
        raise ApiError(Messages.UNKNOWN_API_ERROR, Messages.UNKNOWN_API_MESSAGE)

    async def generate(self, session_id: str, auth_token: str) -> CallToken:
        payload = await self._call("POST", {"authToken": auth_token}, {"sessionId": session_id})
        data = payload["data"]
        token = data.get("token")
        if not isinstance(token, str):
            raise ApiError(Messages.UNKNOWN_API_ERROR, Messages.UNKNOWN_API_MESSAGE)
        return CallToken(token, {k: v for k, v in data.items() if k != "token"})

    async def verify(self, call_token: str) -> dict[str, Any]:
        return await self._call("GET", {"callToken": call_token})

    async def call_details(self, session_id: str, auth_token: str) -> list[dict[str, Any]]:
        """``GET {host}calls/{sessionID}`` (§A.2 #27): the call's logs, ``[]`` if none."""
        payload = await self._call("GET", {"authToken": auth_token}, path=f"calls/{session_id}")
        data = payload["data"]
        return [entry for entry in data if isinstance(entry, dict)] if isinstance(data, list) else []
