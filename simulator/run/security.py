"""What `--secure` adds to a run, in one place that `run`, `load` and `serve` call alike.

Always on, secure or not (see README, Security): every principal has its
own random password on the brokers we start, anonymous clients are
refused, a pattern ACL holds each party to its own topics, the umpire
checks the claimed sender against the connection, and written requests
carry Ed25519 signatures that the umpire and the recipient check.

`--secure` adds:

- TLS only: the broker we start gets a fresh CA and server certificate
  (`simulator.brokers.tls`) and has no plain listener; every client checks
  the certificate against that CA. An external broker must be `mqtts://`.
- Secret signature keys: derived from 32 random bytes kept 0600 beside the
  log (`LOG.signing`) instead of from the exercise id, and a signature
  without a value no longer passes as a paper one: it does not verify.
- Files for other processes (seat files of `--external` parties, the
  control file) name the CA, so those clients verify the broker too.
- A restricted observer: it reads the log topics and the clock only, not
  the inboxes (where confidential cases travel, Art. 6.3) nor the raw
  submissions (`start_broker(..., restricted_observer=True)`).

A command that starts a broker makes itself secure with

    tls = broker_tls(workdir, exercise, options)
    start_broker(kind, topics, parties, workdir, tls=tls, restricted_observer=options.secure)
    signatories = signatories_for(scenario, log_location, options)

and hands `signatories.verify` to the agreement, `signatories` to the
agenda and each party's `PolicyEngine` (`public_only(keep=[party])`).
"""

from dataclasses import dataclass
from pathlib import Path

from simulator.brokers.tls import TlsFiles, generate_tls
from simulator.context import wall_now
from simulator.scenario.model import Scenario
from simulator.signing import Signatories, load_or_create_secret, signing_secret_path

__all__ = ["SecurityOptions", "broker_tls", "signatories_for"]

# Log metadata key recording how a run's signature keys were made, for replay.
SIGNING_METADATA = "signing"
SECRET_SIGNING = "secret"


@dataclass(frozen=True, slots=True)
class SecurityOptions:
    """`secure`: the flag; `signing_secret`: the secret file to use (default: beside the log)."""

    secure: bool = False
    signing_secret: Path | None = None


def signatories_for(scenario: Scenario, log_location: str, options: SecurityOptions) -> Signatories:
    """The signature keys of a run: training keys, or with `secure` keys from a private secret."""
    if not options.secure:
        return Signatories.training(scenario.exercise, scenario.parties)
    path = options.signing_secret or signing_secret_path(log_location)
    return Signatories.from_secret(
        load_or_create_secret(path), scenario.exercise, scenario.parties, require_values=True
    )


def broker_tls(workdir: Path, exercise: str, options: SecurityOptions) -> TlsFiles | None:
    """Fresh TLS files for a broker we start in `workdir` when secure, else None."""
    if not options.secure:
        return None
    return generate_tls(workdir / "tls", now=wall_now(), exercise=exercise)
