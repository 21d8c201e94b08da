"""Signed messages for the queue mappings (``redis``, ``kafka``): HMAC-SHA256.

Tasks, graphs and reports cross Redis and Kafka as pickles, and unpickling runs code. Every
message is therefore signed with a per-deployment secret and checked *before* it is unpickled,
so that whoever can write to the server but lacks the secret cannot run code on the workers
or on the coordinator.

A signed message is ``VERSION + KEY_ID + TAG + PAYLOAD``:

* ``VERSION`` (4 bytes): ``DQ1`` and a zero byte; a later format gets another (a pickle
  starts with byte 0x80, so an unsigned message is never taken for a signed one);
* ``KEY_ID`` (8 bytes): the start of a SHA-256 digest of the key, to name a wrong key;
* ``TAG`` (32 bytes): HMAC-SHA256 of ``VERSION + KEY_ID + len(context) + context + PAYLOAD``.

The *context* (``"redis:RUN_ID:task"``) binds a message to its run and its kind, so a
message copied into another run or another kind of stream is refused too. Signatures
authenticate the origin of a message, not its freshness: a message replayed in its own
stream is accepted (the server's password and TLS keep strangers from writing at all).

The secret comes from the environment, never from the command line (argv is visible to
every user of a host): ``$DARE_QUEUE_SECRET``, or the file named by
``$DARE_QUEUE_SECRET_FILE`` (a Kubernetes or Docker secret), which must not be readable by
other users. See :meth:`Signer.for_coordinator` and :meth:`Signer.for_worker` for what
happens without one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import EngineError

__all__ = [
    "INSECURE_VARIABLE",
    "SECRET_FILE_VARIABLE",
    "SECRET_VARIABLE",
    "SecretError",
    "SignatureError",
    "Signer",
    "key_id",
    "read_secret",
    "sign",
    "verify",
]

#: Environment variable holding the secret itself.
SECRET_VARIABLE = "DARE_QUEUE_SECRET"
#: Environment variable naming a file that holds the secret.
SECRET_FILE_VARIABLE = "DARE_QUEUE_SECRET_FILE"
#: ``1`` sends and accepts unsigned messages when no secret is set (trusted networks only).
INSECURE_VARIABLE = "DARE_QUEUE_INSECURE"
#: The format of signed messages, version 1.
VERSION = b"DQ1\0"
KEY_ID_SIZE = 8
TAG_SIZE = 32
HEADER_SIZE = len(VERSION) + KEY_ID_SIZE + TAG_SIZE
#: Shortest secret accepted, in bytes (``openssl rand -hex 32`` gives 64).
MIN_SECRET = 16

_SAME_SECRET = (f"set the same secret on every host of the deployment (${SECRET_VARIABLE}, "
                f"or a file named by ${SECRET_FILE_VARIABLE})")


class SecretError(EngineError):
    """The secret is missing, too short, or in a file that others can read."""


class SignatureError(EngineError):
    """A message is unsigned or its signature does not verify; it was not unpickled."""


def key_id(key: bytes) -> bytes:
    """The identifier of ``key`` carried by its messages (8 bytes of a SHA-256 digest)."""
    return hashlib.sha256(b"dare-queue-key-id\0" + key).digest()[:KEY_ID_SIZE]


def _tag(key: bytes, identifier: bytes, payload: bytes, context: bytes) -> bytes:
    mac = hmac.new(key, VERSION + identifier, hashlib.sha256)
    mac.update(len(context).to_bytes(4, "big"))
    mac.update(context)
    mac.update(payload)
    return mac.digest()


def sign(key: bytes, payload: bytes, context: bytes = b"") -> bytes:
    """``payload`` signed with ``key`` for ``context``: ``VERSION + KEY_ID + TAG + payload``."""
    identifier = key_id(key)
    return VERSION + identifier + _tag(key, identifier, payload, context) + payload


def verify(key: bytes, message: bytes, context: bytes = b"", where: str = "the queue") -> bytes:
    """The payload of a message signed by :func:`sign` with ``key`` for ``context``.

    Parameters
    ----------
    key
        The secret.
    message
        What was read from the queue.
    context
        What the message was signed for (its run and kind).
    where
        The stream, key or topic it was read from, for the error.

    Raises
    ------
    SignatureError
        If the message is unsigned, signed with another key, or altered; its message names
        ``where`` and says what to do.
    """
    if not message.startswith(VERSION) or len(message) < HEADER_SIZE:
        raise SignatureError(
            f"refused an unsigned message on {where} (not unpickled): someone without the "
            f"deployment's secret wrote it, or a dare without signing; {_SAME_SECRET}"
        )
    identifier = message[len(VERSION):len(VERSION) + KEY_ID_SIZE]
    tag = message[len(VERSION) + KEY_ID_SIZE:HEADER_SIZE]
    payload = message[HEADER_SIZE:]
    mine = key_id(key)
    if not hmac.compare_digest(identifier, mine):
        raise SignatureError(
            f"refused a message on {where} signed with another secret (key id "
            f"{identifier.hex()}, this process has {mine.hex()}; not unpickled): "
            f"{_SAME_SECRET}"
        )
    if not hmac.compare_digest(tag, _tag(key, mine, payload, context)):
        raise SignatureError(
            f"refused a message on {where} whose signature does not match (altered, or "
            "copied from another run or stream; not unpickled)"
        )
    return payload


def unverified_payload(message: bytes) -> bytes:
    """The payload of a signed (or unsigned) message, NOT verified: never unpickle it."""
    return message[HEADER_SIZE:] if message.startswith(VERSION) else message


def read_secret(environ: Mapping[str, str] | None = None) -> tuple[bytes, str] | None:
    """The secret and where it came from, from ``$DARE_QUEUE_SECRET[_FILE]``; else ``None``.

    ``$DARE_QUEUE_SECRET`` wins over the file. Surrounding white space (a file's last
    newline) is not part of the secret.

    Raises
    ------
    SecretError
        If the secret is shorter than 16 bytes, or the file is missing, empty, or grants
        any permission to other users (``chmod 600``; Kubernetes: ``defaultMode: 0400``).
    """
    environ = os.environ if environ is None else environ
    value = environ.get(SECRET_VARIABLE, "")
    if value:
        origin = f"${SECRET_VARIABLE}"
        secret = value.strip().encode()
    elif path_text := environ.get(SECRET_FILE_VARIABLE, ""):
        path = Path(path_text)
        origin = f"{path} (${SECRET_FILE_VARIABLE})"
        try:
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                raise SecretError(f"the queue secret {origin} is not a file")
            if mode & stat.S_IRWXO:
                raise SecretError(
                    f"the queue secret {origin} can be read by other users of this host "
                    f"(mode {stat.S_IMODE(mode):04o}): 'chmod 600 {path}' (a Kubernetes "
                    "secret volume: defaultMode: 0400; a Docker secret: mode: 0400)"
                )
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise SecretError(f"cannot read the queue secret {origin}: {exc.strerror}") from exc
    else:
        return None
    if len(secret) < MIN_SECRET:
        raise SecretError(f"the queue secret from {origin} is too short ({len(secret)} bytes; "
                          f"at least {MIN_SECRET}, e.g. 'openssl rand -hex 32')")
    return secret, origin


def insecure_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``$DARE_QUEUE_INSECURE`` is ``1`` (or ``true``, ``yes``)."""
    environ = os.environ if environ is None else environ
    return environ.get(INSECURE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


class Signer:
    """Signs the messages a process writes to a queue and checks those it reads.

    Parameters
    ----------
    key
        The secret; ``None`` for an insecure signer (``$DARE_QUEUE_INSECURE=1``), which
        writes unsigned messages and accepts only those.
    origin
        Where the key came from, for messages (never the key itself).
    shared
        Whether other hosts can have the key (``False`` for a key made for one run).
    """

    def __init__(self, key: bytes | None, origin: str, shared: bool = True) -> None:
        self.key = key
        self.origin = origin
        self.shared = shared and key is not None
        self._id = key_id(key) if key is not None else b""
        self._macs: dict[str, Any] = {}  # context -> HMAC state after the header

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self.key, "origin": self.origin, "shared": self.shared}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["key"], state["origin"], state["shared"])  # type: ignore[misc]

    def _tag(self, payload: bytes, context: str) -> bytes:
        """:func:`_tag` from a cached state per context (the same bytes, computed faster)."""
        mac = self._macs.get(context)
        if mac is None:
            assert self.key is not None
            data = context.encode()
            mac = hmac.new(self.key, VERSION + self._id + len(data).to_bytes(4, "big") + data,
                           hashlib.sha256)
            if len(self._macs) < 64:
                self._macs[context] = mac
        mac = mac.copy()
        mac.update(payload)
        return bytes(mac.digest())

    def __repr__(self) -> str:
        return f"Signer(origin={self.origin!r})"  # never the key

    @property
    def insecure(self) -> bool:
        """Whether messages go unsigned."""
        return self.key is None

    @property
    def key_id(self) -> str:
        """The key's identifier in hexadecimal (``""`` if insecure)."""
        return key_id(self.key).hex() if self.key is not None else ""

    def sign(self, payload: bytes, context: str) -> bytes:
        """``payload`` signed for ``context`` (unchanged if insecure)."""
        if self.key is None:
            return payload
        return VERSION + self._id + self._tag(payload, context) + payload

    def open(self, message: bytes, context: str, where: str) -> bytes:
        """The payload of ``message`` once its signature for ``context`` is checked.

        Raises
        ------
        SignatureError
            As :func:`verify`; if insecure, for a signed message (the writer has a secret
            this process lacks).
        """
        if self.key is not None:
            if (message.startswith(VERSION) and len(message) >= HEADER_SIZE
                    and message[len(VERSION):len(VERSION) + KEY_ID_SIZE] == self._id
                    and hmac.compare_digest(message[len(VERSION) + KEY_ID_SIZE:HEADER_SIZE],
                                            self._tag(message[HEADER_SIZE:], context))):
                return message[HEADER_SIZE:]
            return verify(self.key, message, context.encode(), where)  # says what is wrong
        if message.startswith(VERSION):
            raise SignatureError(
                f"refused a signed message on {where}: this process runs unsigned "
                f"(${INSECURE_VARIABLE}=1, no secret); {_SAME_SECRET}"
            )
        return message

    @classmethod
    def generated(cls) -> Signer:
        """A random key for one run, known only to its coordinator and local workers."""
        return cls(secrets.token_bytes(32), "a key made for this run", shared=False)

    @classmethod
    def insecure_signer(cls) -> Signer:
        """No signature at all (``$DARE_QUEUE_INSECURE=1``)."""
        return cls(None, f"${INSECURE_VARIABLE}=1 (unsigned)")

    @classmethod
    def for_coordinator(cls, environ: Mapping[str, str] | None = None) -> Signer:
        """The coordinator's signer: the deployment's secret if set.

        Without one, unsigned messages if ``$DARE_QUEUE_INSECURE=1``; otherwise a key made
        for the run, which its local workers share and remote workers cannot have.
        """
        found = read_secret(environ)
        if found is not None:
            return cls(*found)
        if insecure_allowed(environ):
            return cls.insecure_signer()
        return cls.generated()

    @classmethod
    def for_worker(cls, environ: Mapping[str, str] | None = None) -> Signer:
        """A remote worker's signer: the deployment's secret (or the insecure opt-out).

        Raises
        ------
        SecretError
            Without a secret nor ``$DARE_QUEUE_INSECURE=1``.
        """
        found = read_secret(environ)
        if found is not None:
            return cls(*found)
        if insecure_allowed(environ):
            return cls.insecure_signer()
        raise SecretError(
            "a worker needs the deployment's queue secret to check the tasks it runs: "
            f"set ${SECRET_VARIABLE} (or ${SECRET_FILE_VARIABLE}, a file only you can read) "
            "to the same value as on the coordinator's host, e.g. from 'openssl rand -hex 32'"
            f" (${INSECURE_VARIABLE}=1 turns signing off everywhere, for trusted networks)"
        )
