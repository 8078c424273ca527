"""Tests of simulator.eventlog: one contract suite for both stores, then backends, tampering."""
