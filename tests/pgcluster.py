"""A private PostgreSQL cluster for the tests, for machines without a usable server.

Used only when no server answers at the configured URL (and the system's
cluster cannot be started): it runs `initdb` and `pg_ctl` from the installed
PostgreSQL binaries in a temporary directory on a free loopback port, with
trust authentication, as the `postgres` user when run as root (initdb refuses
root), and stops it at exit.
"""

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterError("running as root, but runuser is missing to drop to the postgres user")
    return [runuser, "-u", "postgres", "--", *command]


def start_private_cluster() -> str:
    """Start a throw-away cluster; returns a URL of its `postgres` database."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        raise ClusterError("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = Path(binaries[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="simulator-pg-"))
    base.chmod(0o755)
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    steps = [
        [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"],
        [
            str(bindir / "pg_ctl"),
            "-D", str(data),
            "-o", f"-p {port} -k {base} -h 127.0.0.1 -c fsync=off",
            "-l", str(base / "server.log"),
            "-w", "start",
        ],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(_as_postgres(step), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
            raise ClusterError(f"{' '.join(step[:2])} failed: {done.stderr.strip()} {log[-500:]}")

    def stop() -> None:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"
