"""Who may read the view, and what of it: bearer tokens, configured hashed, each with a name and
an optional scope; and the session cookie the web console uses instead of the token.

The token file (YAML, or JSON, which YAML reads too), given to `load_access(path)`:

```yaml
tokens:
  - name: county-supervisor        # said in logs and sessions; never the token itself
    sha256: 1bfd6a15aed246e1fbb9d314e47041f059a33daadccc2ef431d9659a46c254cc
  - name: township-t03
    sha256: 8e82f407da1c1bf56cc6a6a15470ed069fa488af59cbf9e0e2555981ad37c7e3
    workflows: [dispute-escalation, hotline-12345]   # only these workflows' cases
    prefix: "T03"                  # only cases whose `prefix_of` starts with this
    prefix_of: case_id             # `case_id` (the default) or `attributes.<key>`
```

Make a token and its hash without the project installed (`printf` is a shell builtin, so the
token does not show in the process list):

    TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    printf %s "$TOKEN" | sha256sum

Hashed, so the file can be read by those who deploy it without giving them access; plain
SHA-256 (no salt, no stretching), so tokens must be random and long, as the one above (256
bits): a guessable token is found from its hash in no time. Comparison is constant-time
(`hmac.compare_digest`), against every configured hash, whichever matches.

The prefix scope: `attributes.<key>` reads the attributes of the report that opened the case
(consumers/view/reports.py); a case without that attribute (or whose report the view has not
read, or lost to the case-events topic's retention before a rebuild) is not shown: the scope
fails closed. `case_id` suits intakes whose case ids begin with an area code. Both are a WHERE
clause (`Scope.clause`) inside every query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consumers.errors import ShellError
from consumers.view.queries import starts_with
from consumers.view.tables import cases


class AccessFileError(ShellError):
    """The token file cannot be used; the message is one line naming the file and the problem."""

    retryable = False


@dataclass(frozen=True)
class Scope:
    """What a token sees: cases of these workflows (None: all) whose `prefix_of` starts with
    `prefix` (None: any)."""

    workflows: frozenset[str] | None = None
    prefix: str | None = None
    prefix_of: str = "case_id"

    @property
    def unlimited(self) -> bool:
        return self.workflows is None and self.prefix is None

    def allows_workflow(self, workflow: str) -> bool:
        return self.workflows is None or workflow in self.workflows

    def clause(self) -> sa.ColumnElement[bool] | None:
        """The scope as a condition on the `cases` table (None: no condition)."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.workflows is not None:
            conditions.append(cases.c.workflow.in_(sorted(self.workflows)))
        if self.prefix is not None:
            conditions.append(starts_with(self._prefixed(), self.prefix))
        return sa.and_(*conditions) if conditions else None

    def _prefixed(self) -> sa.ColumnElement[Any]:
        if self.prefix_of == "case_id":
            return cases.c.case_id
        key = self.prefix_of.removeprefix("attributes.")
        # ->> on PostgreSQL, JSON_EXTRACT on SQLite; NULL (never a match) when the key is absent
        attribute: sa.ColumnElement[Any] = cases.c.attributes[key].as_string()
        return attribute


UNLIMITED = Scope()


@dataclass(frozen=True)
class Grant:
    """A caller who proved a token: its name (for logs) and its scope."""

    name: str
    scope: Scope


@dataclass(frozen=True)
class Token:
    """One configured token: its name, the SHA-256 of the token, its scope."""

    name: str
    sha256: bytes
    scope: Scope = UNLIMITED


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token, as the token file holds it (`printf %s TOKEN | sha256sum`)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Access:
    """The configured tokens. `authenticate` compares a presented token's hash with every
    configured hash in constant time (no early exit: the time says nothing about which)."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self.tokens = tuple(tokens)
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        self._by_name = {t.name: Grant(t.name, t.scope) for t in self.tokens}

    def authenticate(self, token: str) -> Grant | None:
        if not token:
            return None
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found: Token | None = None
        for candidate in self.tokens:
            if hmac.compare_digest(presented, candidate.sha256):
                found = candidate
        return Grant(found.name, found.scope) if found is not None else None

    def grant(self, name: str) -> Grant | None:
        """The grant of a token by name (a session names its token)."""
        return self._by_name.get(name)


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^\S+$")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    workflows: list[str] | None = Field(default=None, min_length=1)
    prefix: str | None = Field(default=None, min_length=1)
    prefix_of: str = Field(default="case_id", pattern=r"^(case_id|attributes\.[A-Za-z0-9_-]+)$")

    @model_validator(mode="after")
    def _prefix_of_needs_prefix(self) -> _TokenEntry:
        if "prefix_of" in self.model_fields_set and self.prefix is None:
            raise ValueError("prefix_of without a prefix")
        return self


class _AccessFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[_TokenEntry] = Field(min_length=1)


def load_access(path: str | Path) -> Access:
    """The tokens of a YAML or JSON file; `AccessFileError` (one line: the file and what is
    wrong with it) when it cannot be read or is not a token file."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise AccessFileError(f"{where}: cannot read the token file: {reason}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
        problem = getattr(err, "problem", None) or "not YAML"
        raise AccessFileError(f"{at}: not YAML or JSON: {problem}") from None
    try:
        parsed = _AccessFile.model_validate(raw)
    except ValidationError as err:
        raise AccessFileError(f"{where}: {_first_problem(err)}") from None
    return Access(_tokens(where, parsed.tokens))


def _tokens(where: str, entries: list[_TokenEntry]) -> list[Token]:
    seen_names: set[str] = set()
    seen_hashes: set[str] = set()
    tokens = []
    for number, entry in enumerate(entries):
        digest = entry.sha256.lower()
        if entry.name in seen_names:
            raise AccessFileError(f"{where}: tokens[{number}]: the name {entry.name!r} is taken")
        if digest in seen_hashes:
            raise AccessFileError(f"{where}: tokens[{number}]: the same sha256 as another token")
        seen_names.add(entry.name)
        seen_hashes.add(digest)
        workflows = frozenset(entry.workflows) if entry.workflows is not None else None
        scope = Scope(workflows, entry.prefix, entry.prefix_of)
        tokens.append(Token(entry.name, bytes.fromhex(digest), scope))
    return tokens


def _first_problem(err: ValidationError) -> str:
    """The first problem as `tokens[2].sha256: message` (never the input: it may be a token
    pasted where its hash belongs)."""
    problems = err.errors(include_input=False, include_url=False)
    first = problems[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = str(first["msg"])
    if first["type"] == "string_pattern_mismatch" and where.endswith("sha256"):
        message = "not 64 hex digits (the SHA-256 of the token, not the token)"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where or 'the file'}: {message}{more}"


SESSION_COOKIE = "fengqiao_session"


class Sessions:
    """Session cookies for the web console: `name.expiry.signature`, HMAC-SHA256 under a key
    of this process (random unless given: replicas behind one address must share it), so the
    cookie proves a token was shown without being one. Checked against the current grants: a
    token removed from the file ends its sessions at the next restart."""

    def __init__(self, access: Access, key: bytes | None = None, ttl: timedelta | None = None):
        self.access = access
        self.key = key if key is not None else secrets.token_bytes(32)
        self.ttl = ttl if ttl is not None else timedelta(hours=8)

    def issue(self, grant: Grant, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        body = f"{_b64(grant.name.encode('utf-8'))}.{expires}"
        return f"{body}.{self._sign(body)}"

    def verify(self, cookie: str, now: datetime) -> Grant | None:
        body, _, signature = cookie.rpartition(".")
        expected = self._sign(body).encode("ascii")
        if not body or not hmac.compare_digest(signature.encode("utf-8"), expected):
            return None
        encoded, _, expires = body.partition(".")
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
            expired = int(expires) <= now.timestamp()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        return None if expired else self.access.grant(name)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode("utf-8"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
