"""Who is calling: the CDS Hooks 2.0 client JWT, verified against an allow-list of issuers.

A CDS Client signs a JWT for every call and sends it as ``Authorization: Bearer <jwt>``. postcart accepts it
only when all of these hold (CDS Hooks 2.0.1, "Trusting CDS Clients"):

- the algorithm is ES384 or RS384 (``none`` and every HMAC algorithm are refused: they prove nothing);
- ``iss`` is on the configured allow-list, and the signature verifies with that issuer's JWK Set, given
  inline or fetched from a ``jku`` URL that is itself on the allow-list for that issuer;
- ``aud`` is the service's public URL, or the URL of the endpoint called (``<public URL>/cds-services/<id>``);
- ``exp``, ``iat`` and ``jti`` are present, the token is not expired nor issued in the future, and its ``jti``
  was not seen before from that issuer (replay; in memory, or in a SQLite file shared by worker processes).

The issuers file is YAML or JSON: ``{issuers: [{iss: URL, jwks: {keys: [...]}} | {iss: URL, jku: URL}]}``.
Nothing of the token is logged beyond the reason for a refusal.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml
from jwt import PyJWK, PyJWKClient, PyJWKSet

from postcart.errors import PostcartError

__all__ = ["ALGORITHMS", "AuthenticationFailed", "Authenticator", "ReplayCache", "SqliteReplayCache", "TrustedIssuer",
           "load_trusted_issuers"]

#: The only signing algorithms accepted (CDS Hooks 2.0.1 recommends both; asymmetric, so no shared secret).
ALGORITHMS = ("ES384", "RS384")
_LEEWAY_SECONDS = 30
_MAX_LIFETIME_SECONDS = 3600  # a client JWT is for one call; a token valid for longer is not accepted


class AuthenticationFailed(PostcartError, PermissionError):
    """The caller's JWT is missing or does not verify; the message says which check failed."""


@dataclass(frozen=True)
class TrustedIssuer:
    """One allowed CDS Client: its ``iss`` and its keys (an inline JWK Set, or the ``jku`` to fetch it from)."""

    iss: str
    jwks: Mapping[str, Any] | None = None
    jku: str | None = None


def load_trusted_issuers(path: str | Path) -> list[TrustedIssuer]:
    """Read the issuers file (YAML or JSON), checking every entry; errors name the entry and what is wrong.

    Raises:
        ValueError: the file cannot be read or an entry is not ``{iss, jwks}`` or ``{iss, jku}``.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ValueError(f"{where}: cannot read the trusted issuers file ({type(error).__name__})") from None
    entries = data.get("issuers") if isinstance(data, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: expected {{issuers: [{{iss: URL, jwks: {{keys: [...]}}}} | {{iss: URL, jku: URL}}]}}")
    issuers = []
    for index, entry in enumerate(entries):
        place = f"{where}: issuers[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("iss"), str) or not entry["iss"]:
            raise ValueError(f"{place}: expected an object with iss (the client's issuer URL)")
        jwks, jku = entry.get("jwks"), entry.get("jku")
        if (jwks is None) == (jku is None):
            raise ValueError(f"{place}: give exactly one of jwks (an inline JWK Set) or jku (its URL)")
        if jwks is not None:
            try:
                PyJWKSet.from_dict(dict(jwks))
            except (jwt.PyJWKError, jwt.PyJWKSetError, TypeError, AttributeError) as error:
                raise ValueError(f"{place}: jwks is not a usable JWK Set ({error})") from None
        elif not isinstance(jku, str) or not jku.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"{place}: jku must be an https URL")
        issuers.append(TrustedIssuer(entry["iss"], jwks, jku))
    return issuers


class ReplayCache:
    """The ``jti`` values seen, per issuer, until their token expires: in this process's memory. Thread-safe."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, expires: float, now: float) -> bool:
        """Remember the token; False when it was seen before (a replay)."""
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {seen: until for seen, until in self._seen.items() if until + _LEEWAY_SECONDS > now}
            if (iss, jti) in self._seen:
                return False
            self._seen[(iss, jti)] = expires
            return True


class SqliteReplayCache(ReplayCache):
    """The seen ``jti`` values in a SQLite file, shared by the worker processes of one service."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._local = threading.local()
        with self._connection() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS seen_jti (iss TEXT NOT NULL, jti TEXT NOT NULL, "
                               "expires REAL NOT NULL, PRIMARY KEY (iss, jti))")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")  # a lost entry on power loss: the token expires anyway
            self._local.connection = connection
        return connection

    def first_use(self, iss: str, jti: str, expires: float, now: float) -> bool:
        connection = self._connection()
        try:
            connection.execute("INSERT INTO seen_jti VALUES (?, ?, ?)", (iss, jti, expires))
        except sqlite3.IntegrityError:
            return False
        if int(now) % 60 == 0:
            connection.execute("DELETE FROM seen_jti WHERE expires < ?", (now - _LEEWAY_SECONDS,))
        return True


class Authenticator:
    """Verifies client JWTs; thread-safe (the replay cache and the jku clients are guarded by one lock)."""

    def __init__(self, issuers: list[TrustedIssuer], public_url: str,
                 clock: Callable[[], float] = time.time, replay: ReplayCache | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self._replay = replay or ReplayCache()
        self._clock = clock
        self._issuers = {issuer.iss: issuer for issuer in issuers}
        self._keys: dict[str, dict[str | None, PyJWK]] = {}
        for issuer in issuers:
            if issuer.jwks is not None:
                keyset = PyJWKSet.from_dict(dict(issuer.jwks))
                self._keys[issuer.iss] = {key.key_id: key for key in keyset.keys}
        self._jku_clients: dict[str, PyJWKClient] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, path: str) -> str:
        """The verified issuer of the call's JWT.

        Args:
            authorization: the ``Authorization`` header, ``Bearer <jwt>``.
            path: the path called, e.g. ``/cds-services/postcart-after-car-t`` (for ``aud``).

        Raises:
            AuthenticationFailed: naming the check that failed.
        """
        if not authorization:
            raise AuthenticationFailed("no Authorization header: send the CDS Client's JWT as 'Bearer <jwt>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("the Authorization header is not 'Bearer <jwt>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationFailed("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise AuthenticationFailed(f"JWT algorithm {str(algorithm)[:16]!r} is not accepted: only "
                                       + " or ".join(ALGORITHMS))
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise AuthenticationFailed("the JWT's issuer (iss) is not on this service's list of trusted issuers")
        key = self._key(issuer, header)
        audiences = [self.public_url, self.public_url + path]
        try:
            verified = jwt.decode(token, key.key, algorithms=[algorithm], audience=audiences, issuer=issuer.iss,
                                  leeway=_LEEWAY_SECONDS, options={"require": ["exp", "iat", "jti", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the JWT has expired (exp)") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationFailed(f"the JWT's audience (aud) is not this service ({self.public_url + path})") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationFailed("the JWT was issued in the future (iat)") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationFailed(f"the JWT lacks the {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationFailed("the JWT's signature does not verify with the issuer's keys") from None
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(f"the JWT is not valid ({type(error).__name__})") from None
        now = self._clock()
        issued, expires, jti = verified["iat"], verified["exp"], verified["jti"]
        if not isinstance(issued, int | float) or issued > now + _LEEWAY_SECONDS:
            raise AuthenticationFailed("the JWT was issued in the future (iat)")
        if expires - issued > _MAX_LIFETIME_SECONDS:
            raise AuthenticationFailed(f"the JWT is valid for more than {_MAX_LIFETIME_SECONDS} s (exp - iat)")
        if not isinstance(jti, str) or not jti:
            raise AuthenticationFailed("the JWT's jti is not a string")
        if not self._replay.first_use(issuer.iss, jti, float(expires), now):
            raise AuthenticationFailed("the JWT was already used (jti replayed)")
        return issuer.iss

    def _key(self, issuer: TrustedIssuer, header: Mapping[str, Any]) -> PyJWK:
        kid = header.get("kid")
        jku = header.get("jku")
        if issuer.jku is not None:
            if jku is not None and jku != issuer.jku:
                raise AuthenticationFailed("the JWT's jku is not the key set URL trusted for its issuer")
            try:
                with self._lock:
                    client = self._jku_clients.setdefault(issuer.jku, PyJWKClient(issuer.jku, cache_keys=True,
                                                                                   lifespan=300, timeout=5))
                keys = {key.key_id: key for key in client.get_signing_keys()}
            except jwt.PyJWKClientError:
                raise AuthenticationFailed("the issuer's key set (jku) could not be fetched") from None
        else:
            if jku is not None:
                raise AuthenticationFailed("the JWT names a jku, but its issuer's keys are configured inline")
            keys = self._keys[issuer.iss]
        if kid in keys:
            return keys[kid]
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        raise AuthenticationFailed("no key of the issuer matches the JWT's kid")
