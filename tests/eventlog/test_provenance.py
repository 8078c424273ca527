"""`log export` / `log import` keep the source's checkpoints and say who re-signed what.

Two machines: the source writes and exports under key A; the importer
imports under key B. Run through the command line, into SQLite and
PostgreSQL.
"""

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.eventlog import compute_hash, from_json_line, to_json_line
from simulator.logfiles import open_log
from tests.logs import DRILL, WALL, staged


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


async def write_checkpointed(path: Path) -> None:
    """The drill's 9 events in batches of 3, with a checkpoint every 3 (0, 3, 6, 9, closing 9)."""
    events = staged(DRILL).take().events
    async with open_log(path, create=True, now=lambda: WALL) as store:
        for start in range(0, len(events), 3):
            await store.append(events[start : start + 3])


def rechained(text: str, position: int) -> str:
    """The export with one event's data changed and every later line re-hashed to fit."""
    lines = text.splitlines()
    prevhash = None
    for index, line in enumerate(lines):
        event = from_json_line(line)
        if event.position < position:
            prevhash = event.hash
            continue
        update: dict[str, object] = {"prevhash": prevhash}
        if event.position == position:
            update["data"] = {**event.data, "forged": True}
        event = event.model_copy(update=update)
        event = event.model_copy(update={"hash": compute_hash(event)})
        lines[index] = to_json_line(event)
        prevhash = event.hash
    return "\n".join(lines) + "\n"


@pytest.fixture
def machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Key directories of the source machine (a) and the importing one (b); a is in use."""
    keys = {"a": tmp_path / "keys-a", "b": tmp_path / "keys-b"}
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(keys["a"]))
    monkeypatch.setenv("SIMULATOR_CHECKPOINT_EVERY", "3")
    monkeypatch.setenv("SIMULATOR_CHECKPOINT_SECONDS", "0")
    return keys


@pytest.fixture
def exported(machines: dict[str, Path], tmp_path: Path) -> Path:
    """A log written on machine a, exported with its checkpoints; a's public key in a.pub."""
    log = tmp_path / "source.db"
    asyncio.run(write_checkpointed(log))
    out = tmp_path / "source.jsonl"
    assert invoke("log", "export", str(log), "-o", str(out))[0] == 0
    assert invoke("log", "key", "-o", str(tmp_path / "a.pub"))[0] == 0
    return out


@pytest.fixture
def target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the import goes: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        return str(tmp_path / "imported.db")
    url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")
    return f"{url}?schema={schema}"


def on_machine_b(
    machines: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(machines["b"]))
    assert invoke("log", "key", "-o", str(tmp_path / "b.pub"))[0] == 0
    return tmp_path / "b.pub"


def test_an_import_keeps_the_sources_checkpoints_and_records_the_resigning(
    exported: Path,
    target: str,
    machines: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The import says it re-signed; verify and show say which key vouches for what."""
    b_pub = on_machine_b(machines, monkeypatch, tmp_path)
    a_pub = tmp_path / "a.pub"

    code, _, said = invoke("log", "import", str(exported), "-o", target)
    both = invoke("log", "verify", target, "--key", str(a_pub), "--key", str(b_pub))
    only_a = invoke("log", "verify", target, "--key", str(a_pub))
    shown = invoke("log", "show", target)

    assert code == 0, said
    assert "re-signed positions 1–9" in said
    assert "the source's own 5 checkpoints" in said
    assert "vouch up to position 9" in said
    assert both[0] == 0, both[2]
    assert "re-signed positions 1–9" in both[1]
    assert only_a[0] == 1
    assert "re-signed it when it was imported" in only_a[2]
    assert "pin it too if you trust the machine that imported it" in only_a[2]
    assert "re-signed positions 1–9" in " ".join(shown[1].split())


def test_an_edited_export_with_its_checkpoints_is_refused_naming_the_positions(
    exported: Path,
    target: str,
    machines: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """An edit at 5, re-chained: checkpoint 3 holds, checkpoint 6 does not; nothing is written."""
    exported.write_text(rechained(exported.read_text(), 5))
    on_machine_b(machines, monkeypatch, tmp_path)

    code, _, err = invoke("log", "import", str(exported), "-o", target)

    assert code == 2
    assert "positions 4–6 differ from what checkpoint" in err
    assert "the export was changed after it was checkpointed; nothing was imported" in err


def test_an_edited_export_without_its_checkpoints_is_caught_with_the_sources_key(
    exported: Path,
    target: str,
    machines: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Without checkpoints an edited export imports, says it re-signed, fails a pinned verify."""
    exported.write_text(rechained(exported.read_text(), 5))
    Path(f"{exported}.checkpoints").unlink()
    on_machine_b(machines, monkeypatch, tmp_path)

    code, _, said = invoke("log", "import", str(exported), "-o", target)
    trusting = invoke("log", "verify", target)
    pinned = invoke("log", "verify", target, "--key", str(tmp_path / "a.pub"))

    assert code == 0, said
    assert "it came without the source's checkpoints" in said
    assert trusting[0] == 0
    assert "it came without the source's checkpoints" in " ".join(trusting[1].split())
    assert pinned[0] == 1
    assert "positions 1–9" in pinned[2]
    assert "imported without its source's checkpoints and re-signed by key" in pinned[2]


@pytest.fixture
def exported_run(machines: dict[str, Path], tmp_path: Path) -> Path:
    """The drill's log with a run's metadata (seed, clock), exported with checkpoints and it."""
    log = tmp_path / "run.db"

    async def write() -> None:
        async with open_log(log, create=True, now=lambda: WALL) as store:
            await store.set_metadata("seed", "7")
            await store.set_metadata("clock", "simulated")
        await write_checkpointed(log)

    asyncio.run(write())
    out = tmp_path / "run.jsonl"
    assert invoke("log", "export", str(log), "-o", str(out))[0] == 0
    return out


def test_exported_metadata_is_held_to_the_sources_last_checkpoint(
    exported_run: Path,
    target: str,
    machines: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The seed edited in FILE.metadata is refused by name; as exported, it imports and verifies."""
    metadata = Path(f"{exported_run}.metadata")
    as_exported = metadata.read_text()
    on_machine_b(machines, monkeypatch, tmp_path)

    metadata.write_text(as_exported.replace('"seed": "7"', '"seed": "8"'))
    edited = invoke("log", "import", str(exported_run), "-o", target)
    metadata.write_text(as_exported)
    code, _, said = invoke("log", "import", str(exported_run), "-o", target)
    verified = invoke("log", "verify", target)

    assert '"seed": "7"' in as_exported
    assert edited[0] == 2
    assert "'seed' differs from what the source's last checkpoint (position 9" in edited[2]
    assert "the metadata was edited after it was checkpointed" in edited[2]
    assert "nothing was imported" in edited[2]
    assert code == 0, said
    assert verified[0] == 0, verified[2]
    assert "the metadata (" in verified[1]
    assert "is as the last checkpoint signs it" in " ".join(verified[1].split())
