"""Signed queue messages (``engine.signing``): formats, refusals, where the secret comes from."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from engine.signing import (
    HEADER_SIZE,
    VERSION,
    SecretError,
    SignatureError,
    Signer,
    key_id,
    read_secret,
    sign,
    verify,
)

KEY = b"k" * 32
OTHER = b"o" * 32


def test_a_signed_message_verifies_and_keeps_its_payload():
    message = sign(KEY, b"payload", b"redis:run:task")
    assert message.startswith(VERSION + key_id(KEY))
    assert len(message) == HEADER_SIZE + len(b"payload")
    assert verify(KEY, message, b"redis:run:task") == b"payload"


def test_an_unsigned_pickle_is_refused_naming_the_place():
    with pytest.raises(SignatureError, match=r"unsigned message on stream S .*DARE_QUEUE_SECRET"):
        verify(KEY, pickle.dumps(("T", 1)), b"c", "stream S")


def test_another_key_is_named_by_its_id():
    message = sign(OTHER, b"x", b"c")
    with pytest.raises(SignatureError, match=f"another secret \\(key id {key_id(OTHER).hex()}"):
        verify(KEY, message, b"c", "stream S")


@pytest.mark.parametrize("change", ["payload", "tag", "context", "truncated"])
def test_an_altered_message_is_refused(change):
    message = sign(KEY, b"payload", b"redis:a:task")
    context = b"redis:a:task"
    if change == "payload":
        message = message[:-1] + b"X"
    elif change == "tag":
        message = message[:HEADER_SIZE - 1] + bytes([message[HEADER_SIZE - 1] ^ 1]) + \
            message[HEADER_SIZE:]
    elif change == "context":
        context = b"redis:b:task"  # copied into another run
    else:
        message = message[:HEADER_SIZE - 5]
    with pytest.raises(SignatureError):
        verify(KEY, message, context)


def test_the_context_is_length_prefixed():
    """("ab", "c...") and ("a", "bc...") must not share a tag."""
    assert sign(KEY, b"cd", b"ab")[len(VERSION):HEADER_SIZE] != \
        sign(KEY, b"bcd", b"a")[len(VERSION):HEADER_SIZE]


def test_the_signer_never_shows_its_key():
    signer = Signer(b"s3cr3t-" * 4, "$DARE_QUEUE_SECRET")
    assert "s3cr3t" not in repr(signer)
    assert signer.open(signer.sign(b"p", "c"), "c", "here") == b"p"
    assert pickle.loads(pickle.dumps(signer)).key == signer.key  # for spawned workers


def test_an_insecure_signer_refuses_signed_messages():
    insecure = Signer.insecure_signer()
    assert insecure.sign(b"p", "c") == b"p"
    assert insecure.open(b"p", "c", "here") == b"p"
    with pytest.raises(SignatureError, match="runs unsigned"):
        insecure.open(sign(KEY, b"p", b"c"), "c", "here")


def test_the_secret_from_the_environment_wins_over_the_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text("f" * 20 + "\n")
    path.chmod(0o600)
    assert read_secret({"DARE_QUEUE_SECRET": "e" * 20, "DARE_QUEUE_SECRET_FILE": str(path)}) \
        == (b"e" * 20, "$DARE_QUEUE_SECRET")
    secret, origin = read_secret({"DARE_QUEUE_SECRET_FILE": str(path)})  # type: ignore[misc]
    assert secret == b"f" * 20 and str(path) in origin
    assert read_secret({}) is None


def test_a_file_that_others_can_read_is_refused(tmp_path: Path):
    path = tmp_path / "secret"
    path.write_text("f" * 32)
    path.chmod(0o644)
    with pytest.raises(SecretError, match=r"other users .*mode 0644.*chmod 600.*defaultMode"):
        read_secret({"DARE_QUEUE_SECRET_FILE": str(path)})
    path.chmod(0o640)  # a group (fsGroup of a pod) may read it
    assert read_secret({"DARE_QUEUE_SECRET_FILE": str(path)}) is not None


def test_missing_and_short_secrets_are_refused(tmp_path):
    with pytest.raises(SecretError, match="cannot read the queue secret"):
        read_secret({"DARE_QUEUE_SECRET_FILE": str(tmp_path / "none")})
    with pytest.raises(SecretError, match="too short"):
        read_secret({"DARE_QUEUE_SECRET": "short"})
    with pytest.raises(SecretError, match="not a file"):
        read_secret({"DARE_QUEUE_SECRET_FILE": str(tmp_path)})


def test_without_a_secret_coordinators_make_one_and_workers_refuse():
    coordinator = Signer.for_coordinator({})
    assert not coordinator.insecure and not coordinator.shared
    assert Signer.for_coordinator({}).key != coordinator.key  # one per run
    with pytest.raises(SecretError, match=r"DARE_QUEUE_SECRET.*openssl rand"):
        Signer.for_worker({})
    assert Signer.for_worker({"DARE_QUEUE_INSECURE": "1"}).insecure
    assert Signer.for_coordinator({"DARE_QUEUE_INSECURE": "1"}).insecure
    shared = Signer.for_worker({"DARE_QUEUE_SECRET": "x" * 16, "DARE_QUEUE_INSECURE": "1"})
    assert shared.shared and not shared.insecure  # a secret, once set, is always used


def test_a_secret_is_never_taken_from_argv(monkeypatch):
    monkeypatch.delenv("DARE_QUEUE_SECRET", raising=False)
    monkeypatch.delenv("DARE_QUEUE_SECRET_FILE", raising=False)
    monkeypatch.setattr("sys.argv", ["dare", "--secret", "x" * 32])
    assert read_secret() is None
    assert os.environ.get("DARE_QUEUE_SECRET") is None


def test_the_signer_makes_the_bytes_of_sign_and_checks_every_context():
    signer = Signer(KEY, "test")
    for context in ("redis:a:task", "redis:a:report", "redis:a:task"):
        message = signer.sign(b"payload", context)
        assert message == sign(KEY, b"payload", context.encode())
        assert signer.open(message, context, "here") == b"payload"
    with pytest.raises(SignatureError, match="does not match"):
        signer.open(signer.sign(b"payload", "redis:a:task"), "redis:b:task", "here")
