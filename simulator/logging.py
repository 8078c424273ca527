"""Logging is configured once, here, at the command line's edge (STYLE 11)."""

import logging
import sys

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure(*, json: bool = False, level: str = "warning") -> None:
    """Readable console lines by default; one JSON object per line with `json`."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Looked up at each logger's creation, not now: tests swap sys.stderr.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (aiomqtt, amqtt) stay quiet
    # below the chosen level too.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    for noisy in ("amqtt", "transitions", "asyncio"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.ERROR))
