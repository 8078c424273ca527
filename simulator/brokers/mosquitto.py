"""A private Mosquitto for one exercise: generated config, accounts and ACL, run as a subprocess.

`MosquittoBroker` renders `brokers/mosquitto.conf` (the template at the
top of the repository) into a work directory together with a password file
(`mosquitto_passwd`) and a pattern ACL (`simulator.brokers.access`), then
runs `mosquitto -c <workdir>/mosquitto.conf` bound to loopback. It is
ready when Mosquitto logs that it is running. For fault drills it can be
stopped (SIGTERM), killed (SIGKILL) and started again on the same port with
the same persistence file.
"""

import asyncio
import os
import pwd
import re
import signal
import socket
import string
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from simulator.brokers.access import mosquitto_acl
from simulator.brokers.base import BrokerStartError, account_credentials, write_private
from simulator.brokers.tls import TlsFiles
from simulator.lifetime import dying_with_parent
from simulator.messaging.topics import Topics
from simulator.messaging.wire import MAX_PAYLOAD_BYTES
from simulator.transport import BrokerAddress, Credentials, MqttProtocol

__all__ = [
    "DEFAULT_BINARY",
    "DEFAULT_MESSAGE_SIZE_LIMIT",
    "DEFAULT_PASSWD_BINARY",
    "DEFAULT_TEMPLATE",
    "MosquittoBroker",
    "render_config",
]

DEFAULT_BINARY = Path("/usr/sbin/mosquitto")
DEFAULT_PASSWD_BINARY = Path("/usr/bin/mosquitto_passwd")
# The template lives with the other broker files at the top of the
# repository, where operators read it; the package is installed editable.
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "brokers" / "mosquitto.conf"
# Headroom above the application's own limit, so that the application
# refuses an oversize submission with a reason before the broker drops it.
DEFAULT_MESSAGE_SIZE_LIMIT = MAX_PAYLOAD_BYTES + 16 * 1024
_RUNNING = re.compile(rb"mosquitto version \S+ running")
_PORT_TAKEN = re.compile(rb"Address already in use")
_PORT_ATTEMPTS = 5
_TAIL_LINES = 20
_POLL = 0.01


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def render_config(template: str, values: Mapping[str, str]) -> str:
    """The template with every ${NAME} filled in; a missing value is an error, not a blank."""
    try:
        return string.Template(template).substitute(values)
    except (KeyError, ValueError) as exc:
        raise BrokerStartError(f"Mosquitto config template: no value for {exc}") from None


def tls_settings(tls: TlsFiles) -> str:
    """Config lines that put the (only) listener on TLS; they follow the template's listener.

    Listener settings apply to the listener declared last, so appended to
    the rendered template they secure its one listener: no plain port stays.
    """
    return (
        "\n# --secure: the listener above speaks TLS only (certificates generated per run).\n"
        f"cafile {tls.ca_file}\n"
        f"certfile {tls.certfile}\n"
        f"keyfile {tls.keyfile}\n"
        "tls_version tlsv1.2\n"
    )


def _require_executable(path: Path, what: str) -> Path:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrokerStartError(
            f"{what} not found at {path}; install it with `apt-get install mosquitto` "
            "(or pass the path of your own build)"
        )
    return path


def _tail(path: Path, offset: int = 0) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return "(none)"
    lines = data.decode("utf-8", "replace").splitlines()[-_TAIL_LINES:]
    return "\n".join(lines) or "(empty)"


class MosquittoBroker:
    """Mosquitto run by us for one exercise, on loopback, with persistence, accounts and ACL."""

    name = "mosquitto"
    protocols: tuple[MqttProtocol, ...] = ("3.1.1", "5")
    max_qos = 2

    def __init__(
        self,
        topics: Topics,
        accounts: Mapping[str, str],
        *,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        binary: Path = DEFAULT_BINARY,
        passwd_binary: Path = DEFAULT_PASSWD_BINARY,
        template: Path = DEFAULT_TEMPLATE,
        message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT,
        persistent_client_expiration: str = "1d",
        autosave_interval: int = 1,
        autosave_on_changes: bool = True,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        tls: TlsFiles | None = None,
        restricted_observer: bool = False,
    ) -> None:
        """`accounts` maps each principal to its password (see `exercise_principals`).

        With `tls` its only listener speaks MQTT over TLS (`tls_settings`).
        """
        if re.search(r"\s", str(workdir)):
            # Mosquitto's config format cannot quote a path.
            raise BrokerStartError(f"Mosquitto work dir {workdir} must not contain whitespace")
        if message_size_limit < 0:
            raise ValueError("message_size_limit must be >= 0 (0 means no limit)")
        self.topics = topics
        self.tls = tls
        self.restricted_observer = restricted_observer
        self._accounts = dict(accounts)
        self.workdir = workdir
        self.host = host
        self._port = port
        self._auto_port = port == 0
        self.binary = binary
        self.passwd_binary = passwd_binary
        self.template = template
        self._size_limit = message_size_limit
        self.persistent_client_expiration = persistent_client_expiration
        if autosave_interval < 0:
            raise ValueError("autosave_interval must be >= 0")
        self.autosave_interval = autosave_interval
        self.autosave_on_changes = autosave_on_changes
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.config_file = workdir / "mosquitto.conf"
        self.password_file = workdir / "mosquitto.passwd"
        self.acl_file = workdir / "mosquitto.acl"
        self.log_file = workdir / "mosquitto.log"
        self.stderr_file = workdir / "mosquitto.stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._started = False
        self._template_text = ""

    # -- the Broker interface

    @property
    def address(self) -> BrokerAddress:
        if not self._port:
            raise RuntimeError("the Mosquitto broker has no port until it is started")
        if self.tls is not None:
            return BrokerAddress(self.host, self._port, tls=True, ca_file=self.tls.ca_file)
        return BrokerAddress(self.host, self._port)

    @property
    def message_size_limit(self) -> int | None:
        """The largest payload the broker passes on (None: no limit)."""
        return self._size_limit or None

    def credentials(self, principal: str) -> Credentials:
        return account_credentials(self._accounts, principal)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- lifecycle for tests and fault drills

    @property
    def pid(self) -> int | None:
        """The process id while Mosquitto runs, else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    async def start(self) -> None:
        """Start Mosquitto (again) and return once it accepts connections.

        The first start writes the config, password file and ACL and, for
        port 0, picks a free port; later starts reuse all of them, so
        clients reconnect to the same address and the broker reloads its
        persistence file.
        """
        if self.pid is not None:
            raise BrokerStartError(f"Mosquitto is already running (pid {self.pid})")
        _require_executable(self.binary, "Mosquitto")
        if not self._prepared:
            await self._prepare()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            taken = await self._launch()
            if not taken:
                self._started = True
                return
            # Only a first start may move: later ones keep the address that
            # clients reconnect to.
            if self._started or not self._auto_port or attempt == _PORT_ATTEMPTS:
                raise BrokerStartError(
                    f"Mosquitto could not listen on {self.host}:{self._port}: port in use"
                )
            # Someone took the free port between our probe and Mosquitto's bind.
            self._port = free_port(self.host)
            self._write_config()

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after `stop_timeout`); Mosquitto saves its state on SIGTERM."""
        await self._end(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL, then wait: what was not yet saved is lost."""
        await self._end(signal.SIGKILL)

    async def restart(self) -> None:
        """Stop with SIGTERM and start again on the same port and persistence file."""
        await self.stop()
        await self.start()

    # -- internals

    async def _prepare(self) -> None:
        _require_executable(self.passwd_binary, "mosquitto_passwd")
        try:
            template = self.template.read_text(encoding="utf-8")
        except OSError as exc:
            raise BrokerStartError(f"Mosquitto config template {self.template}: {exc}") from None
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._auto_port:
            self._port = free_port(self.host)
        self._template_text = template
        self._write_config()
        acl = mosquitto_acl(self.topics, restricted_observer=self.restricted_observer)
        self.acl_file.write_text(acl, encoding="utf-8")
        await asyncio.to_thread(self._write_password_file)
        self._prepared = True

    def _write_config(self) -> None:
        values = {
            "PORT": str(self._port),
            "BIND_ADDRESS": self.host,
            "WORKDIR": str(self.workdir),
            "PASSWORD_FILE": str(self.password_file),
            "ACL_FILE": str(self.acl_file),
            "MESSAGE_SIZE_LIMIT": str(self._size_limit),
            "PERSISTENT_CLIENT_EXPIRATION": self.persistent_client_expiration,
            "RUN_AS_USER": pwd.getpwuid(os.geteuid()).pw_name,
            "AUTOSAVE_INTERVAL": str(self.autosave_interval),
            "AUTOSAVE_ON_CHANGES": "true" if self.autosave_on_changes else "false",
        }
        config = render_config(self._template_text, values)
        if self.tls is not None:
            config += tls_settings(self.tls)
        self.config_file.write_text(config, encoding="utf-8")

    def _write_password_file(self) -> None:
        # One mosquitto_passwd run for all accounts: -U hashes a file of
        # plain `user:password` lines in place (-b would take one process per
        # account). The plain file is private to us for those milliseconds.
        write_private(self.password_file, "".join(f"{u}:{p}\n" for u, p in self._accounts.items()))
        result = subprocess.run(
            [str(self.passwd_binary), "-U", str(self.password_file)],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            self.password_file.unlink(missing_ok=True)
            raise BrokerStartError(
                f"mosquitto_passwd -U failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}"
            )

    def _spawn(self) -> "subprocess.Popen[bytes]":
        # subprocess.Popen rather than asyncio's subprocesses: those are tied
        # to the loop that made them, while a broker must be stoppable by pid
        # from any loop or from plain code at teardown. Popen returns once
        # the child is forked; nothing here waits on it.
        with self.stderr_file.open("ab") as stderr:
            return subprocess.Popen(
                # A run killed outright takes its broker with it (no orphan to find).
                dying_with_parent([str(self.binary), "-c", str(self.config_file)]),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                # A terminal's Ctrl-C is for the run, which closes its broker when done
                # with it (a load run still drains and reconciles over it).
                start_new_session=True,
            )

    async def _launch(self) -> bool:
        """Run Mosquitto until it is ready; True if the port was taken, error otherwise."""
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        err_offset = self.stderr_file.stat().st_size if self.stderr_file.exists() else 0
        process = self._process = self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            log = _read_from(self.log_file, log_offset)
            if _RUNNING.search(log):
                return False
            code = process.poll()
            if code is not None:
                self._process = None
                output = log + _read_from(self.stderr_file, err_offset)
                if _PORT_TAKEN.search(output):
                    return True
                raise BrokerStartError(
                    f"Mosquitto exited with status {code} at start; "
                    f"stderr:\n{_tail(self.stderr_file, err_offset)}\n"
                    f"log:\n{_tail(self.log_file, log_offset)}"
                )
            if loop.time() > deadline:
                await self._end(signal.SIGKILL)
                raise BrokerStartError(
                    f"Mosquitto did not report running within {self.start_timeout:g} s; "
                    f"stderr:\n{_tail(self.stderr_file, err_offset)}\n"
                    f"log:\n{_tail(self.log_file, log_offset)}"
                )
            await asyncio.sleep(_POLL)

    async def _end(self, sig: signal.Signals) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_timeout
            while process.poll() is None:
                if loop.time() > deadline:
                    process.kill()
                    deadline = loop.time() + self.stop_timeout
                await asyncio.sleep(_POLL)
        self._process = None


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""
