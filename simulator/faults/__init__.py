"""Fault injection for drills and tests: a TCP proxy that misbehaves between clients and broker."""

from simulator.faults.proxy import Direction, FaultProxy, Packet, ProxiedBroker, Rule

__all__ = ["Direction", "FaultProxy", "Packet", "ProxiedBroker", "Rule"]
