"""A simulated agency: its policy engine (what it decides) and its runtime (how it takes part)."""

from simulator.party.runtime import PartyRuntime, PartySettings, message_id

__all__ = ["PartyRuntime", "PartySettings", "message_id"]
