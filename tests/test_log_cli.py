"""`simulator log show | verify | export | import`, run as a user would."""

import asyncio
import errno
import hashlib
import json
import socket
import sqlite3
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from simulator.cli import app
from simulator.cli.logview import metadata_beside
from simulator.context import wall_now
from simulator.eventlog import LogError
from simulator.logfiles import made_or_nothing, open_log
from simulator.run.exercise import RunOptions, run_exercise
from simulator.run.replay import check, fork
from simulator.scenario import load_scenario
from tests.eventlog.conftest import pg_schema, pg_url
from tests.logs import DRILL, write_log

__all__ = ["pg_schema", "pg_url"]

EXAMPLE = Path(__file__).parents[1] / "scenarios" / "example.yaml"


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))
    path = tmp_path / "drill.db"
    asyncio.run(write_log(path))
    return path


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_show_lists_events_with_their_findings(drill: Path) -> None:
    """`log show` prints every event with its type, parties and violations."""
    code, out, _ = _invoke("log", "show", str(drill))
    assert code == 0
    assert "9 of 9 events" in out
    assert "refusal-without-reasons" in out
    assert "beta → alpha" in out


def test_show_filters_by_case_and_type(drill: Path) -> None:
    """--case and --type narrow the listing; --json gives one CloudEvent per line."""
    code, out, _ = _invoke("log", "show", str(drill), "--case", "case-3", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["subject"] for e in lines] == ["case-3"] * 3
    assert all(e["specversion"] == "1.0" for e in lines)
    code, out, _ = _invoke("log", "show", str(drill), "--type", "acceptance", "--json")
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["coop.msg.acceptance"] * 2


def test_show_at_a_position_gives_case_states_then(drill: Path) -> None:
    """--at POS shows each case's state as of that position (time travel)."""
    code, out, _ = _invoke("log", "show", str(drill), "--at", "3")
    assert code == 0
    assert "cases as of position 3" in out
    assert "under consideration" in out
    assert "refused" not in out.split("cases as of position 3")[1]


def test_verify_passes_a_sound_log(drill: Path) -> None:
    """A log as written verifies, exit 0."""
    code, out, _ = _invoke("log", "verify", str(drill))
    assert code == 0, out
    assert f"{len(DRILL) + 1} events" in out


def test_verify_names_the_position_of_a_changed_byte(drill: Path) -> None:
    """Editing one stored event makes verify exit 1 and name its position."""
    with sqlite3.connect(drill) as db:
        body = db.execute("SELECT body FROM events WHERE position = 4").fetchone()[0]
        db.execute(
            "UPDATE events SET body = ? WHERE position = 4",
            (body.replace("beta", "bets", 1),),
        )
    code, out, _ = _invoke("log", "verify", str(drill), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["first_bad_position"] == 4
    assert report["ok"] is False


def test_export_import_round_trip_is_exact(drill: Path, tmp_path: Path) -> None:
    """Export, import into a new log and export again give identical bytes."""
    first = tmp_path / "a.jsonl"
    assert _invoke("log", "export", str(drill), "-o", str(first))[0] == 0
    copy = tmp_path / "copy.db"
    assert _invoke("log", "import", str(first), "-o", str(copy))[0] == 0
    code, out, _ = _invoke("log", "export", str(copy))
    assert code == 0
    assert out == first.read_text(encoding="utf-8")


def test_import_never_overwrites(drill: Path, tmp_path: Path) -> None:
    """Importing onto an existing file is refused and the file is left as it was."""
    exported = tmp_path / "a.jsonl"
    _invoke("log", "export", str(drill), "-o", str(exported))
    before = hashlib.sha256(drill.read_bytes()).hexdigest()
    code, _, err = _invoke("log", "import", str(exported), "-o", str(drill))
    assert code == 2
    assert "already exists" in err
    assert hashlib.sha256(drill.read_bytes()).hexdigest() == before


def _schema_exists(url: str, schema: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        return bool(row.fetchone()[0])  # type: ignore[index]


async def test_export_and_import_keep_the_runs_metadata(tmp_path: Path) -> None:
    """A fork exported and imported keeps its scenario, seed and lineage: `--check` passes.

    Before: the export held the events alone, and the imported log's tools
    (`replay --check`, `fork`, `report`) no longer found its scenario.
    """
    parent, child = tmp_path / "parent.db", tmp_path / "child.db"
    await run_exercise(load_scenario(EXAMPLE), RunOptions(log=str(parent)))
    await fork(str(parent), 10, str(child))
    exported, imported = tmp_path / "child.jsonl", tmp_path / "imported.db"
    code, _, err = await asyncio.to_thread(
        _invoke, "log", "export", str(child), "-o", str(exported)
    )
    assert code == 0, err
    code, _, err = await asyncio.to_thread(
        _invoke, "log", "import", str(exported), "-o", str(imported)
    )
    assert code == 0, err

    async def run_metadata(log: Path) -> dict[str, str]:
        async with open_log(log, read_only=True) as store:
            found = await store.metadata()
        return {k: v for k, v in found.items() if not k.startswith("eventlog.")}

    kept = await run_metadata(imported)
    assert kept == await run_metadata(child)
    assert {"scenario", "seed", "clock", "parent", "fork_position", "generation"} <= set(kept)
    assert (await check(str(imported))).ok
    # An export from before the metadata travelled with it still imports, without it.
    metadata_beside(exported).unlink()
    older = tmp_path / "older.db"
    code, _, err = await asyncio.to_thread(
        _invoke, "log", "import", str(exported), "-o", str(older)
    )
    assert code == 0, err
    assert await run_metadata(older) == {}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_refused_import_leaves_nothing_and_the_retry_works(
    drill: Path, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """An edited line or a file that continues no log: refused, no log left; fixed: imported.

    Before: the refused import left an empty log (SQLite file and its checkpoints, or a
    PostgreSQL schema), and the retry was refused because the log already existed.
    """
    exported = tmp_path / "a.jsonl"
    _invoke("log", "export", str(drill), "-o", str(exported))
    lines = exported.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = json.loads(lines[2])
    edited["data"]["edited"] = True
    bad = {
        # The event no longer matches its hash.
        "edited": [*lines[:2], json.dumps(edited) + "\n", *lines[3:]],
        # A tail continues no new log.
        "tail": lines[4:],
    }
    url, schema = "", ""
    if kind == "sqlite":
        target = str(tmp_path / "new.db")
    else:
        url, schema = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_schema")
        target = f"{url}?schema={schema}"

    def gone() -> bool:
        if kind == "sqlite":
            return not list(tmp_path.glob("new.db*"))
        return not _schema_exists(url, schema)

    for what, text in bad.items():
        exported.write_text("".join(text), encoding="utf-8")
        code, _, err = _invoke("log", "import", str(exported), "-o", target)
        assert code == 2, (what, err)
        assert gone(), f"{what}: the refused import left a log behind"
    exported.write_text("".join(lines), encoding="utf-8")
    code, _, err = _invoke("log", "import", str(exported), "-o", target)
    assert code == 0, err
    assert _invoke("log", "export", target)[1] == "".join(lines)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_log_made_by_a_failed_import_is_removed_and_one_there_before_is_kept(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """`made_or_nothing`: what fails after making its log (a full disk, say) leaves none."""
    if kind == "sqlite":
        location = str(tmp_path / "new.db")
    else:
        url = request.getfixturevalue("pg_url")
        location = f"{url}?schema={request.getfixturevalue('pg_schema')}"

    async def fail_after_making() -> None:
        async with made_or_nothing(location), open_log(location, create=True, now=wall_now):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        await fail_after_making()
    with pytest.raises(LogError, match="no event log here"):
        await open_log(location, read_only=True).__aenter__()
    assert not list(tmp_path.glob("new.db*"))
    async with open_log(location, create=True, now=wall_now) as store:
        await store.set_metadata("kept", "yes")
    with pytest.raises(OSError, match="No space"):
        await fail_after_making()
    async with open_log(location, read_only=True) as store:
        assert await store.get_metadata("kept") == "yes"


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("show {log} --at 0", "--at takes a position in the log, 1 or more, not 0"),
        ("show {log} --at -5", "--at takes a position in the log, 1 or more, not -5"),
        ("export {log} -o {dir}/missing/x.jsonl", "{dir}/missing/x.jsonl: No such file or"),
        ("import {dir}/pic.png -o {dir}/x.db", "{dir}/pic.png: not a log export (JSON lines"),
    ],
)
def test_bad_input_to_the_log_commands_is_one_clear_message(
    drill: Path, tmp_path: Path, command: str, says: str
) -> None:
    """Exit 2 and one message naming what and where; nothing written.

    Before: a non-UTF-8 import and an export into a missing directory were
    tracebacks (exit 1), and `show --at 0` or `--at -5` were taken silently.
    """
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    fill = {"log": str(drill), "dir": str(tmp_path)}
    code, _, err = _invoke("log", *command.format(**fill).split())
    assert code == 2, err
    assert says.format(**fill) in " ".join(err.split())
    assert not (tmp_path / "x.db").exists()


def test_a_non_utf8_import_names_its_line(tmp_path: Path) -> None:
    """The first byte that is not UTF-8 is named by its line and offset (from 0)."""
    export = tmp_path / "export.jsonl"
    export.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    code, _, err = _invoke("log", "import", str(export), "-o", str(tmp_path / "x.db"))
    assert code == 2
    assert "line 2 (byte 16) is not UTF-8" in " ".join(err.split())


@pytest.mark.parametrize("command", ["show", "verify", "export"])
def test_foreign_and_corrupt_files_get_a_clear_error(tmp_path: Path, command: str) -> None:
    """Random bytes or someone else's SQLite database: a clear error, the file untouched."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 8)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    for path in (junk, foreign):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        code, _, err = _invoke("log", command, str(path))
        assert code == 2, (command, path, err)
        assert str(path) in err.replace("\n", "")
        assert "not an event log" in err.replace("\n", " ")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def _closed_port() -> int:
    """A TCP port nothing listens on (bound once by the kernel, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Every command that reads a log, as a user types it; {dir} is a scratch directory.
_READERS = [
    "log show",
    "log verify",
    "log export",
    "report -o {dir}/report",
    "letters -o {dir}/letters",
    "replay --check",
    "resume",
    "fork --at 1 -o {dir}/fork.db",
]


@pytest.mark.parametrize("reader", _READERS)
@pytest.mark.parametrize("where", ["schema-not-a-name", "no-such-database", "no-server"])
def test_a_postgres_log_that_cannot_be_reached_is_one_clear_message(
    pg_url: str, tmp_path: Path, reader: str, where: str
) -> None:
    """A schema that is no name, a database that is not there, a server that does not answer:
    exit 2 and one line naming the schema and what failed, for every command that reads a
    log.

    Before: tracebacks (a ValueError, psycopg's OperationalError) from every one of them:
    the check for a partitioned run connected before the log's store did.
    """
    base = pg_url.rsplit("/", 1)[0]
    url = {
        "schema-not-a-name": f"{pg_url}?schema=Run 42",
        "no-such-database": f"{base}/no_such_db_{tmp_path.name[-8:].lower()}?schema=hl_run",
        "no-server": f"postgresql://postgres@127.0.0.1:{_closed_port()}/test?schema=hl_run",
    }[where]
    args = [*reader.format(dir=tmp_path).split(), url]
    code, _, err = _invoke(*args)
    said = " ".join(err.split())
    assert code == 2, err
    assert "Traceback" not in err
    schema = "'Run 42'" if where == "schema-not-a-name" else "hl_run"
    assert f"schema {schema}" in said, said
    expected = {
        "schema-not-a-name": "not a plain lower-case identifier",
        "no-such-database": "cannot connect",
        "no-server": "cannot connect",
    }[where]
    assert expected in said, said


def test_verify_says_which_key_it_trusted_and_that_it_came_from_the_log(drill: Path) -> None:
    """Without --key, verify names the key's fingerprint and says it was read from the log."""
    _, key_out, _ = _invoke("log", "key")
    fingerprint = key_out.split()[0]

    code, out, _ = _invoke("log", "verify", str(drill))

    assert code == 0, out
    assert f"trusted checkpoint key {fingerprint}, read from the log itself" in out
    assert "closed cleanly" in out


def test_verify_with_a_pinned_key_file_or_hex(drill: Path, tmp_path: Path) -> None:
    """`log key -o FILE` writes the public key; --key FILE and --pubkey HEX pin it."""
    public = tmp_path / "umpire.pub"
    code, out, _ = _invoke("log", "key", "-o", str(public))
    assert code == 0
    fingerprint = out.split()[0]
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")

    by_file = _invoke("log", "verify", str(drill), "--key", str(public))
    report = json.loads(_invoke("log", "verify", str(drill), "--key", str(public), "--json")[1])
    hex_key = report["keys"][0]["key"]
    by_hex = _invoke("log", "verify", str(drill), "--pubkey", hex_key)

    assert by_file[0] == 0
    assert f"trusted checkpoint keys: {fingerprint} (pinned)" in by_file[1]
    assert report["pinned"] is True
    assert by_hex[0] == 0


def test_verify_with_another_pinned_key_fails_naming_the_positions(drill: Path) -> None:
    """A log whose checkpoints are signed by a key other than the pinned one is unvouched."""
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()

    code, _, err = _invoke("log", "verify", str(drill), "--pubkey", stranger)

    assert code == 1
    flat = " ".join(err.split())
    assert f"positions 1–{len(DRILL) + 1}" in flat
    assert "no checkpoint of the log is signed by a pinned key" in flat


def test_export_of_a_log_without_checkpoints_says_it_has_none(drill: Path, tmp_path: Path) -> None:
    """A log whose checkpoint side file is gone exports with that said (and exit 0: its
    events read back sound), not as if its signed checkpoints had gone beside the export.

    Before: "exported N events to FILE, its signed checkpoints to FILE.checkpoints", an
    empty file.
    """
    Path(f"{drill}.checkpoints").unlink()
    exported = tmp_path / "drill.jsonl"

    code, _, err = _invoke("log", "export", str(drill), "-o", str(exported))

    said = " ".join(err.split())
    assert code == 0, err
    assert "its signed checkpoints to" not in said
    assert f"{drill} has no signed checkpoints, so {exported}.checkpoints is empty" in said
    assert Path(f"{exported}.checkpoints").read_text() == ""


def test_export_writes_the_checkpoints_beside_the_events(drill: Path, tmp_path: Path) -> None:
    """`log export -o FILE` also writes FILE.checkpoints, the log's signed checkpoints."""
    exported = tmp_path / "drill.jsonl"

    code, _, err = _invoke("log", "export", str(drill), "-o", str(exported))

    lines = (tmp_path / "drill.jsonl.checkpoints").read_text().splitlines()
    assert code == 0, err
    assert [json.loads(line)["position"] for line in lines] == [0, len(DRILL) + 1]


def test_export_of_a_log_that_records_no_run_says_it_carries_no_metadata(
    drill: Path, tmp_path: Path
) -> None:
    """A log that records no run (no scenario, seed or lineage; a partitioned run's export
    is the same) exports with that said, its FILE.metadata `{}`.

    Before: "…, the run's metadata (scenario, seed, lineage) to FILE.metadata", an empty one.
    """
    exported = tmp_path / "drill.jsonl"

    code, _, err = _invoke("log", "export", str(drill), "-o", str(exported))

    said = " ".join(err.split())
    assert code == 0, err
    assert "the run's metadata" not in said
    assert f"no run metadata (scenario, seed, lineage: none to carry) to {exported}.metadata" in (
        said
    )
    assert json.loads(Path(f"{exported}.metadata").read_text()) == {}


@pytest.mark.parametrize("reader", _READERS)
def test_a_directory_given_as_the_log_is_named_as_one(tmp_path: Path, reader: str) -> None:
    """Every reader says a directory is not a log file. Before: "Is a directory" from some."""
    directory = tmp_path / "runs"
    directory.mkdir()
    command, _, options = reader.format(dir=tmp_path).partition(" -o ")
    words = [*command.split(), str(directory), *(["-o", options] if options else [])]

    code, _, err = _invoke(*words)

    assert code == 2, err
    said = " ".join(err.split())
    assert f"{directory}: not an event log (a directory, not a log file)" in said, said


def test_an_export_without_events_is_not_imported(tmp_path: Path) -> None:
    """An empty file makes no log. Before: an empty log, "re-signed positions 1–0"."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")

    code, _, err = _invoke("log", "import", str(empty), "-o", str(tmp_path / "new.db"))

    assert code == 2
    assert f"{empty}: holds no events; nothing was imported" in " ".join(err.split())
    assert not (tmp_path / "new.db").exists()
