"""The messaging room: wire, topics, the bus and its in-memory implementation."""

from simulator.messaging.memory import MemoryBus, MemoryHub

__all__ = ["MemoryBus", "MemoryHub"]
