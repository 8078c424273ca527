"""Read models folded from the event log: case states, findings, the timeline."""

from simulator.projections.cases import CaseProjection, Divergence, Finding, MissingAgreement
from simulator.projections.controller import (
    ControllerEntry,
    ControllerProjection,
    controller_gist,
    describe_control,
)
from simulator.projections.framework import Projection, ProjectionGap, catch_up, follow
from simulator.projections.milestones import Milestones, MilestonesProjection
from simulator.projections.timeline import TimelineEntry, TimelineProjection, gist

__all__ = [
    "CaseProjection",
    "ControllerEntry",
    "ControllerProjection",
    "Divergence",
    "Finding",
    "Milestones",
    "MilestonesProjection",
    "MissingAgreement",
    "Projection",
    "ProjectionGap",
    "TimelineEntry",
    "TimelineProjection",
    "catch_up",
    "controller_gist",
    "describe_control",
    "follow",
    "gist",
]
