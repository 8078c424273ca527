"""An AsyncAPI 3 document of an exercise's topics and messages, generated from the models.

Nothing here is written by hand that the code also defines: channel
addresses come from `Topics`, payload schemas from the pydantic models the
umpire and the parties use, so the document cannot drift from the wire.
"""

from typing import Any

from pydantic import BaseModel

from simulator import __version__
from simulator.eventlog import Event
from simulator.messaging.topics import DEFAULT_ROOT
from simulator.messaging.wire import (
    CatchUp,
    CatchUpRequest,
    Control,
    Ended,
    Events,
    PlanStated,
    Rejected,
    Round,
    RoundDone,
    Submission,
    Tick,
)
from simulator.protocol import MESSAGE_ADAPTER

REF_TEMPLATE = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    models: list[type[BaseModel]] = [
        Submission,
        RoundDone,
        CatchUpRequest,
        PlanStated,
        Events,
        Round,
        Tick,
        Ended,
        Rejected,
        CatchUp,
        Control,
        Event,
    ]
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    message = MESSAGE_ADAPTER.json_schema(ref_template=REF_TEMPLATE)
    defs.update(message.pop("$defs", {}))
    defs["ProtocolMessage"] = message
    # A submission's `message` is a protocol message; say so in the document.
    defs["Submission"]["properties"]["message"] = {
        "$ref": REF_TEMPLATE.format(model="ProtocolMessage")
    }
    defs["Events"]["properties"]["events"] = {
        "type": "array",
        "items": {"$ref": REF_TEMPLATE.format(model="Event")},
    }
    defs["CatchUp"]["properties"]["events"] = defs["Events"]["properties"]["events"]
    return defs


def _message(name: str, schema: str, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": REF_TEMPLATE.format(model=schema)},
    }


def _ref(channel: str, message: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{message}"}


PARTY = {"description": "A party id, [a-z0-9_-]{1,64}."}
PARTITION = {"description": "A partition number, from 0 (simulator.protocol.ids.partition_of)."}


def asyncapi_document(root: str = DEFAULT_ROOT) -> dict[str, Any]:
    base = f"{root}/{{exercise}}"
    exercise = {"description": "The exercise id from the scenario, [a-z0-9_-]{1,64}."}
    channels: dict[str, Any] = {
        "submit": {
            "address": f"{base}/submit/{{party}}",
            "description": "A party's submissions; only that party may publish here (ACL).",
            "parameters": {"exercise": exercise, "party": PARTY},
            "messages": {
                "submission": _message(
                    "submission", "Submission", "One protocol message, with the party's seq."
                )
            },
        },
        "submitPartition": {
            "address": f"{base}/submit/{{party}}/{{partition}}",
            "description": (
                "A party's submissions where the cases are split among umpires (`simulator "
                "load|run|serve --partitions`): the partition of the message's case, a stable "
                "hash of its id; a submission on another partition's topic is refused and "
                "recorded."
            ),
            "parameters": {"exercise": exercise, "party": PARTY, "partition": PARTITION},
            "messages": {
                "submission": _message(
                    "submission", "Submission", "One protocol message, with the party's seq."
                )
            },
        },
        "report": {
            "address": f"{base}/report/{{party}}",
            "description": "A party's round reports, plans and catch-up requests to the umpire.",
            "parameters": {"exercise": exercise, "party": PARTY},
            "messages": {
                "roundDone": _message("roundDone", "RoundDone", "The party handled a round."),
                "planStated": _message(
                    "planStated", "PlanStated", "Realtime: what the party holds and plans."
                ),
                "catchUpRequest": _message(
                    "catchUpRequest", "CatchUpRequest", "The party missed events."
                ),
            },
        },
        "reportPartition": {
            "address": f"{base}/report/{{party}}/{{partition}}",
            "description": (
                "Where the cases are split among umpires: a party's plan and catch-up "
                "requests to one partition's umpire, with what it holds of that one's log "
                "(each partition numbers its own positions)."
            ),
            "parameters": {"exercise": exercise, "party": PARTY, "partition": PARTITION},
            "messages": {
                "planStated": _message(
                    "planStated", "PlanStated", "What the party holds of this partition's log."
                ),
                "catchUpRequest": _message(
                    "catchUpRequest", "CatchUpRequest", "The party missed this one's events."
                ),
            },
        },
        "log": {
            "address": f"{base}/log/{{sender}}/{{recipient}}",
            "description": (
                "Committed events, several per MQTT message, readable only by the sender and "
                "recipient (sender `umpire` for rejections and deadlines)."
            ),
            "parameters": {"exercise": exercise, "sender": PARTY, "recipient": PARTY},
            "messages": {
                "events": _message("events", "Events", "Committed CloudEvents, in order.")
            },
        },
        "inbox": {
            "address": f"{base}/inbox/{{party}}",
            "description": (
                "The umpire's answers to one party: catch-up batches; and the committed "
                "messages of confidential cases (Art. 6.3), which stay off the log topics."
            ),
            "parameters": {"exercise": exercise, "party": PARTY},
            "messages": {
                "catchUp": _message("catchUp", "CatchUp", "Events the party missed."),
                "events": _message("events", "Events", "A confidential case's committed events."),
            },
        },
        "clock": {
            "address": f"{base}/clock",
            "description": "Round markers, the end marker, and the exercise's own events.",
            "parameters": {"exercise": exercise},
            "messages": {
                "round": _message("round", "Round", "Round k at simulated time t."),
                "tick": _message(
                    "tick", "Tick", "Realtime: the clock, and (per partition) what to hold."
                ),
                "ended": _message("ended", "Ended", "The exercise is over."),
                "events": _message("events", "Events", "Events every participant sees."),
            },
        },
        "control": {
            "address": f"{base}/control",
            "description": "The controller's commands to the umpire.",
            "parameters": {"exercise": exercise},
            "messages": {"control": _message("control", "Control", "Pause, resume, speed…")},
        },
    }
    operations = {
        "submitMessage": {
            "action": "send",
            "channel": {"$ref": "#/channels/submit"},
            "summary": "A party submits a protocol message (QoS 1).",
            "messages": [_ref("submit", "submission")],
        },
        "submitToPartition": {
            "action": "send",
            "channel": {"$ref": "#/channels/submitPartition"},
            "summary": "A party submits to the umpire owning its case's partition (QoS 1).",
            "messages": [_ref("submitPartition", "submission")],
        },
        "reportRound": {
            "action": "send",
            "channel": {"$ref": "#/channels/report"},
            "messages": [
                _ref("report", "roundDone"),
                _ref("report", "planStated"),
                _ref("report", "catchUpRequest"),
            ],
        },
        "reportToPartition": {
            "action": "send",
            "channel": {"$ref": "#/channels/reportPartition"},
            "summary": "A party tells one partition's umpire what it holds of its log.",
            "messages": [
                _ref("reportPartition", "planStated"),
                _ref("reportPartition", "catchUpRequest"),
            ],
        },
        "receiveCommitted": {
            "action": "receive",
            "channel": {"$ref": "#/channels/log"},
            "summary": "A party (or an observer) receives committed events.",
            "messages": [_ref("log", "events")],
        },
        "receiveCatchUp": {
            "action": "receive",
            "channel": {"$ref": "#/channels/inbox"},
            "messages": [_ref("inbox", "catchUp"), _ref("inbox", "events")],
        },
        "followClock": {
            "action": "receive",
            "channel": {"$ref": "#/channels/clock"},
            "messages": [
                _ref("clock", "round"),
                _ref("clock", "tick"),
                _ref("clock", "ended"),
                _ref("clock", "events"),
            ],
        },
        "controlExercise": {
            "action": "send",
            "channel": {"$ref": "#/channels/control"},
            "messages": [_ref("control", "control")],
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Assistance procedure exercise (Art. 4-7)",
            "version": __version__,
            "description": (
                "Parties submit protocol messages; the umpire validates, appends to the log "
                "and publishes committed events. Payloads are JSON; committed events are "
                "structured-mode CloudEvents 1.0."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:{port}",
                "protocol": "mqtt",
                "protocolVersion": "3.1.1",
                "description": "The embedded broker `simulator run` starts (authentication on).",
                "variables": {"port": {"description": "Chosen free at start."}},
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _schemas()},
    }
