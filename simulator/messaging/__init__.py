"""The messaging room: the wire format, the topic scheme, the bus and where events are routed.

Nothing is re-exported: `simulator.messaging.topics` must stay importable by the pure
scenario model without pulling in asyncio (`memory`, `routing`).
"""
