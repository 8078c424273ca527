"""Ed25519 signatures on written requests: signing, checking, keys, and the Art. 4.2 fold."""

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import InputError
from simulator.protocol import Agreement, SignatureStatus, apply, parse_message
from simulator.signing import (
    Signatories,
    load_or_create_secret,
    signed_bytes,
    tamper,
)
from tests.protocol.builders import PARTIES, SETTINGS, T0, valid_fields

SECRET = bytes(range(32))


def _keys(**options: Any) -> Signatories:
    return Signatories.from_secret(SECRET, "drill", PARTIES, **options)


def _draft(kind: str = "written_request", **overrides: Any) -> dict[str, Any]:
    return {**_reply(kind, "alpha", "beta"), **overrides}


def test_a_signed_request_verifies() -> None:
    """A request signed with its signatory's key verifies; the value is a base64 Ed25519 one."""
    keys = _keys()
    signed = keys.sign(_draft())
    assert len(base64.b64decode(signed["signature"]["value"])) == 64
    assert keys.verify(parse_message(signed)) is SignatureStatus.VALID


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("assistance_sought", "Something else entirely."),
        ("recipient", "gamma"),
        ("case_id", "c2"),
        ("seal", "FORGED-SEAL"),
        ("signature", {"name": "A. Deputy", "title": "Deputy Minister"}),
    ],
)
def test_any_change_after_signing_breaks_the_signature(field: str, value: Any) -> None:
    """Content, route, case, seal and the signatory's name are all covered by the signature."""
    keys = _keys()
    signed = keys.sign(_draft())
    changed = dict(signed)
    if field == "signature":
        changed["signature"] = {**value, "value": signed["signature"]["value"]}
    else:
        changed[field] = value
    assert keys.verify(parse_message(changed)) is SignatureStatus.INVALID


def test_a_forged_signature_looks_right_and_does_not_verify() -> None:
    """A signature made with another key (the forger's) has the right shape and fails."""
    keys = _keys()
    forged = tamper(keys, _draft(), "signature")
    assert len(base64.b64decode(forged["signature"]["value"])) == 64
    assert keys.verify(parse_message(forged)) is SignatureStatus.INVALID
    altered = tamper(keys, _draft(), "content")
    assert keys.verify(parse_message(altered)) is SignatureStatus.INVALID


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), "A" * 88])
def test_garbage_signature_values_do_not_verify(value: str) -> None:
    """Undecodable, short or random values are INVALID, never an error."""
    message = _draft(signature={"name": "A. Head", "value": value})
    assert _keys().verify(parse_message(message)) is SignatureStatus.INVALID


def test_a_paper_signature_is_unchecked_unless_values_are_required() -> None:
    """No value: unchecked by default (paper); in a secure run it does not verify."""
    message = parse_message(_draft())
    assert _keys().verify(message) is SignatureStatus.UNCHECKED
    assert _keys(require_values=True).verify(message) is SignatureStatus.INVALID


def test_a_signatory_without_a_key_is_left_to_the_art_4_4_rule() -> None:
    """A name that is not the head or a deputy has no key: unchecked, and not signed by us."""
    keys = _keys()
    stranger = _draft(signature={"name": "Nobody"})
    assert keys.sign(stranger) == stranger
    assert keys.verify(parse_message(stranger)) is SignatureStatus.UNCHECKED


def test_signing_is_deterministic_and_keys_belong_to_their_exercise() -> None:
    """The same secret signs the same bytes; another exercise or secret has other keys."""
    first = _keys().sign(_draft())["signature"]["value"]
    assert _keys().sign(_draft())["signature"]["value"] == first
    other_exercise = Signatories.from_secret(SECRET, "other", PARTIES).sign(_draft())
    other_secret = Signatories.from_secret(bytes(32), "drill", PARTIES).sign(_draft())
    training = Signatories.training("drill", PARTIES).sign(_draft())
    values = {first, *(m["signature"]["value"] for m in (other_exercise, other_secret, training))}
    assert len(values) == 4
    assert _keys().verify(parse_message(other_secret)) is SignatureStatus.INVALID


def test_signed_bytes_are_domain_separated() -> None:
    """The signed bytes start with a tag that no checkpoint or event row starts with."""
    assert signed_bytes(parse_message(_draft())).startswith(b"coop-simulator/request-signature/v1")


def test_a_seat_can_sign_only_as_itself_and_check_everyone() -> None:
    """An exported seat holds its own private keys and everyone's public keys."""
    keys = _keys(require_values=True)
    seat = Signatories.from_export(keys.export("alpha"))
    assert seat.require_values
    signed = seat.sign(_draft())
    assert keys.verify(parse_message(signed)) is SignatureStatus.VALID
    beta_fields = valid_fields("written_request", "beta", "alpha")
    as_beta = _draft(sender="beta", recipient="alpha", **beta_fields)
    assert seat.sign(as_beta) == as_beta, "a seat signed for another party"
    assert seat.verify(parse_message(keys.sign(as_beta))) is SignatureStatus.VALID
    record = Signatories.from_record(keys.record())
    assert not record.can_sign("alpha")
    assert record.verify(parse_message(signed)) is SignatureStatus.VALID


def test_unreadable_exported_keys_are_a_clear_error() -> None:
    """A seat file with broken keys names the problem instead of crashing."""
    with pytest.raises(InputError, match="unreadable signature keys"):
        Signatories.from_export({"exercise": "drill", "public": {"alpha": {"A. Head": "zz"}}})


def test_the_secret_is_private_and_refused_when_others_can_read_it(tmp_path: Path) -> None:
    """The run's signing secret is created 0600, read back the same, refused if loosened."""
    path = tmp_path / "run.db.signing"
    secret = load_or_create_secret(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == secret
    path.chmod(0o640)
    with pytest.raises(InputError, match="accessible to others"):
        load_or_create_secret(path)


def _fold(keys: Signatories, messages: list[dict[str, Any]]) -> list[list[str]]:
    agreement = Agreement.of(PARTIES, SETTINGS, keys.verify)
    case = None
    found_by_message = []
    for number, message in enumerate(messages):
        case, found = apply(case, parse_message(message), T0 + timedelta(hours=number), agreement)
        found_by_message.append([v.rule_id for v in found])
    return found_by_message


def _reply(kind: str, sender: str, recipient: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "message_id": f"m-{kind}",
        "case_id": "c1",
        "sender": sender,
        "recipient": recipient,
        **valid_fields(kind, sender, recipient),
        **extra,
    }


def test_the_umpire_flags_acting_on_a_forged_request_but_not_asking_first() -> None:
    """Forged request then acceptance: forged-request-acted-on. Asking first, then a genuinely
    signed confirmation: the acceptance is in order (Art. 4.2). A forged confirmation is not."""
    keys = _keys()
    forged = tamper(keys, _draft(), "signature")
    acceptance = _reply("acceptance", "beta", "alpha")
    assert _fold(keys, [forged, acceptance])[1] == ["forged-request-acted-on"]
    asking = _reply("confirmation_request", "beta", "alpha")
    unsigned = _reply("additional_confirmation", "alpha", "beta", signature={"name": "A. Head"})
    genuine = keys.sign(unsigned)
    assert keys.verify(parse_message(genuine)) is SignatureStatus.VALID
    assert _fold(keys, [forged, asking, genuine, acceptance]) == [[], [], [], []]
    fake = tamper(keys, unsigned, "signature")
    assert _fold(keys, [forged, asking, fake, acceptance])[3] == ["forged-request-acted-on"]
