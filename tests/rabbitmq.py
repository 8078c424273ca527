"""A private RabbitMQ node with its MQTT plugin, for the tests that use RabbitMQ by URL.

Started from the installed RabbitMQ (Debian's `rabbitmq-server`) in a temporary
directory, under a node name of its own and on free loopback ports (AMQP,
distribution, MQTT), so it neither needs nor disturbs a system RabbitMQ; one
account with every permission on the default vhost, as an operator would give
the simulator. Stopped (and killed if it will not stop) on exit.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from simulator.context import secret_hex

BIN = Path("/usr/lib/rabbitmq/bin")
# A node starts in about 10 s on 2 cores; a busy machine is given far longer.
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def available() -> bool:
    return (BIN / "rabbitmq-server").exists() and shutil.which("erl") is not None


@contextlib.contextmanager
def private_rabbitmq(base: Path) -> Iterator[str]:
    """A running node in `base`; yields its MQTT URL, with credentials and `max_qos=1`."""
    assert available(), "rabbitmq-server is missing: apt-get install rabbitmq-server"
    base.mkdir(parents=True, exist_ok=True)
    node = f"simtest-{secret_hex(4)}@localhost"
    mqtt, amqp, dist = _free_port(), _free_port(), _free_port()
    (base / "enabled_plugins").write_text("[rabbitmq_mqtt].\n", encoding="utf-8")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
        f"mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}\n"
        "mqtt.allow_anonymous = false\n"
        "loopback_users = none\n",
        encoding="utf-8",
    )
    environ = {
        **os.environ,
        # The Erlang cookie goes to HOME: the node and its rabbitmqctl share it here.
        "HOME": str(base),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(base / "pid"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
    }

    def ctl(*args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", node, *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"rabbitmqctl {args[0]}: {done.stdout}{done.stderr}"

    out = (base / "server.out").open("wb")
    # Its own session: the script starts the Erlang VM as a child, killed with it if need be.
    server = subprocess.Popen(
        [str(BIN / "rabbitmq-server")],
        env=environ,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Waits on the node's own readiness (its pid file, then its applications).
        ctl("wait", str(base / "pid"), "--timeout", str(START_TIMEOUT_S), timeout=START_TIMEOUT_S)
        password = secret_hex(8)
        ctl("add_user", "simulator", password)
        ctl("set_permissions", "-p", "/", "simulator", ".*", ".*", ".*")
        yield f"mqtt://simulator:{password}@127.0.0.1:{mqtt}?max_qos=1"
    finally:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            ctl("stop", timeout=60)
        if server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        out.close()
