"""The private Mosquitto the MQTT benchmarks measure against (imported by them, not run)."""

from pathlib import Path

from simulator.brokers import MosquittoBroker, exercise_principals
from simulator.messaging.topics import Topics


def private_mosquitto(topics: Topics, directory: str) -> MosquittoBroker:
    """Mosquitto as `simulator load` starts it: accounts, ACL, persistence saved once a second."""
    return MosquittoBroker(
        topics,
        exercise_principals(["p000", "p001"]),
        workdir=Path(directory),
        autosave_on_changes=False,
    )
