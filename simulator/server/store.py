"""What the backend persists, in SQLite: users, auth tokens, the token secret, groups,
calls and who was in each call when.

A file database survives a restart (users and their auth tokens still work, and call
tokens signed before the restart still verify, because the secret is stored too);
``":memory:"`` is the embedded default. Queries are small and few (at login and
join), so they run on the loop's thread.
"""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
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
CREATE TABLE IF NOT EXISTS groups (
    guid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    guid TEXT NOT NULL REFERENCES groups(guid) ON DELETE CASCADE,
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    PRIMARY KEY (guid, uid)
);
CREATE TABLE IF NOT EXISTS calls (
    session_id TEXT PRIMARY KEY,
    initiator TEXT NOT NULL REFERENCES users(uid),
    receiver_type TEXT NOT NULL CHECK (receiver_type IN ('user', 'group')),
    receiver_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('audio', 'video')),
    status TEXT NOT NULL,
    initiated_at REAL NOT NULL,
    joined_at REAL,
    ended_at REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS call_answers (
    session_id TEXT NOT NULL REFERENCES calls(session_id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    status TEXT NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (session_id, uid)
);
CREATE TABLE IF NOT EXISTS call_participants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES calls(session_id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    joined_at REAL NOT NULL,
    left_at REAL
);
"""


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: str
    name: str
    avatar: str


@dataclass(frozen=True, slots=True)
class GroupRecord:
    guid: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallRow:
    """One stored call (contract §F.2's ``Call``, server side)."""

    session_id: str
    initiator: str
    receiver_type: str
    receiver_id: str
    type: str
    status: str
    initiated_at: float
    joined_at: float | None
    ended_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class PresenceRow:
    """One stretch of one participant in a call's media session."""

    uid: str
    joined_at: float
    left_at: float | None


class Store:
    """The backend's SQLite database."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        auth_token_ttl: float = math.inf,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.auth_token_ttl = auth_token_ttl
        """Seconds an auth token is good for after it is issued; then it expires."""
        self._wall_clock = wall_clock
        if self.path != ":memory:":
            # The file holds the token secret and auth tokens: the owner's alone. SQLite gives
            # its -wal and -shm files the database file's permissions.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)
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
                (uid, name, avatar, self._wall_clock()),
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
            (token, uid, self._wall_clock()),
        )
        return token

    def user_for_auth_token(self, token: str) -> UserRecord | None:
        """The user an unexpired auth token belongs to."""
        row = self._db.execute(
            "SELECT u.uid, u.name, u.avatar, t.created_at FROM auth_tokens t JOIN users u ON u.uid = t.uid "
            "WHERE t.token = ?",
            (token,),
        ).fetchone()
        if row is None or self._wall_clock() - row[3] >= self.auth_token_ttl:
            return None
        return UserRecord(*row[:3])

    # --- groups -----------------------------------------------------------------------------

    def create_group(self, guid: str, name: str, members: list[str]) -> GroupRecord:
        unknown = [uid for uid in members if self.get_user(uid) is None]
        if unknown:
            raise ApiError(Codes.UID_NOT_FOUND, f"no users with uids {unknown}", 404)
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT INTO groups (guid, name, created_at) VALUES (?, ?, ?)",
                    (guid, name, self._wall_clock()),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO group_members (guid, uid) VALUES (?, ?)",
                    [(guid, m) for m in members],
                )
        except sqlite3.IntegrityError:
            raise ApiError(
                Codes.GUID_ALREADY_EXISTS, f"a group with guid {guid!r} already exists", 409
            ) from None
        return GroupRecord(guid, name, tuple(dict.fromkeys(members)))

    def delete_group(self, guid: str) -> bool:
        """Forget a group and its members; whether it existed (calls to it keep their records)."""
        with self._db:
            deleted = self._db.execute("DELETE FROM groups WHERE guid = ?", (guid,)).rowcount
        return deleted > 0

    def get_group(self, guid: str) -> GroupRecord | None:
        row = self._db.execute("SELECT guid, name FROM groups WHERE guid = ?", (guid,)).fetchone()
        if row is None:
            return None
        members = self._db.execute("SELECT uid FROM group_members WHERE guid = ? ORDER BY rowid", (guid,))
        return GroupRecord(row[0], row[1], tuple(m[0] for m in members))

    # --- calls ------------------------------------------------------------------------------

    _CALL_COLUMNS = (
        "session_id, initiator, receiver_type, receiver_id, type, status, initiated_at, joined_at, "
        "ended_at, updated_at"
    )

    def insert_call(self, call: CallRow) -> None:
        self._db.execute(
            f"INSERT INTO calls ({self._CALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call.session_id, call.initiator, call.receiver_type, call.receiver_id, call.type,
                call.status, call.initiated_at, call.joined_at, call.ended_at, call.updated_at,
            ),
        )  # fmt: skip

    def get_call(self, session_id: str) -> CallRow | None:
        row = self._db.execute(
            f"SELECT {self._CALL_COLUMNS} FROM calls WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else CallRow(*row)

    def update_call(self, call: CallRow) -> None:
        self._db.execute(
            "UPDATE calls SET status = ?, joined_at = ?, ended_at = ?, updated_at = ? WHERE session_id = ?",
            (call.status, call.joined_at, call.ended_at, call.updated_at, call.session_id),
        )

    def record_answer(self, session_id: str, uid: str, status: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO call_answers (session_id, uid, status, answered_at) VALUES (?, ?, ?, ?)",
            (session_id, uid, status, self._wall_clock()),
        )

    def answers(self, session_id: str) -> dict[str, str]:
        rows = self._db.execute("SELECT uid, status FROM call_answers WHERE session_id = ?", (session_id,))
        return dict(rows.fetchall())

    def participant_joined(self, session_id: str, uid: str, at: float) -> None:
        self._db.execute(
            "INSERT INTO call_participants (session_id, uid, joined_at) VALUES (?, ?, ?)",
            (session_id, uid, at),
        )

    def participant_left(self, session_id: str, uid: str, at: float) -> None:
        self._db.execute(
            "UPDATE call_participants SET left_at = ? WHERE id = ("
            "SELECT id FROM call_participants WHERE session_id = ? AND uid = ? AND left_at IS NULL "
            "ORDER BY id DESC LIMIT 1)",
            (at, session_id, uid),
        )

    def close_interrupted(self, at: float, *, ongoing: str, ended: str, ringing: str, unanswered: str) -> int:
        """After a restart, end what a previous process left open at ``at``: presence rows
        without a leave, ``ongoing`` calls (as ``ended``) and ``ringing`` ones (as
        ``unanswered``). The number of rows changed."""
        with self._db:
            changed = self._db.execute(
                "UPDATE call_participants SET left_at = ? WHERE left_at IS NULL", (at,)
            ).rowcount
            changed += self._db.execute(
                "UPDATE calls SET status = ?, ended_at = ?, updated_at = ? WHERE status = ?",
                (ended, at, at, ongoing),
            ).rowcount
            changed += self._db.execute(
                "UPDATE calls SET status = ?, updated_at = ? WHERE status = ?", (unanswered, at, ringing)
            ).rowcount
        return changed

    def presence(self, session_id: str) -> list[PresenceRow]:
        rows = self._db.execute(
            "SELECT uid, joined_at, left_at FROM call_participants WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [PresenceRow(*row) for row in rows.fetchall()]
