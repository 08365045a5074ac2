"""What the backend persists, in SQLite: users, auth tokens and the token secret.

A file database survives a restart (users and their auth tokens still work, and call
tokens signed before the restart still verify, because the secret is stored too);
``":memory:"`` is the embedded default. Queries are small and few (at login and
join), so they run on the loop's thread.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from simulator.server.errors import ApiError, Codes

__all__ = ["Store", "UserRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    uid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    avatar TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_tokens (
    token TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: str
    name: str
    avatar: str


class Store:
    """The backend's SQLite database."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def secret(self) -> str:
        """The call-token signing secret, created on first use and kept."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'jwt_secret'").fetchone()
        if row:
            return str(row[0])
        value = secrets.token_urlsafe(32)
        self._db.execute("INSERT INTO meta (key, value) VALUES ('jwt_secret', ?)", (value,))
        return value

    def create_user(self, uid: str, name: str, avatar: str = "") -> UserRecord:
        try:
            self._db.execute(
                "INSERT INTO users (uid, name, avatar, created_at) VALUES (?, ?, ?, ?)",
                (uid, name, avatar, time.time()),
            )
        except sqlite3.IntegrityError:
            raise ApiError(Codes.UID_ALREADY_EXISTS, f"a user with uid {uid!r} already exists", 409) from None
        return UserRecord(uid, name, avatar)

    def get_user(self, uid: str) -> UserRecord | None:
        row = self._db.execute("SELECT uid, name, avatar FROM users WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else UserRecord(*row)

    def issue_auth_token(self, uid: str) -> str:
        if self.get_user(uid) is None:
            raise ApiError(Codes.UID_NOT_FOUND, f"no user with uid {uid!r}", 404)
        token = f"{uid}_{secrets.token_hex(20)}"
        self._db.execute(
            "INSERT INTO auth_tokens (token, uid, created_at) VALUES (?, ?, ?)",
            (token, uid, time.time()),
        )
        return token

    def user_for_auth_token(self, token: str) -> UserRecord | None:
        row = self._db.execute(
            "SELECT u.uid, u.name, u.avatar FROM auth_tokens t JOIN users u ON u.uid = t.uid "
            "WHERE t.token = ?",
            (token,),
        ).fetchone()
        return None if row is None else UserRecord(*row)
