"""Prometheus metrics of a running load test (`simulator load --metrics-port`)."""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class LoadMetrics:
    """Counters and gauges fed from the live progress, served on 127.0.0.1:`port`."""

    def __init__(self, port: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "simulator_load_committed_events", "Events committed to the log", registry=r
        )
        self.cases_started = Gauge(
            "simulator_load_cases_started", "Cases started so far", registry=r
        )
        self.cases_completed = Gauge(
            "simulator_load_cases_completed", "Cases completed so far", registry=r
        )
        self.open = Gauge("simulator_load_cases_open", "Cases in flight", registry=r)
        self.rate = Gauge(
            "simulator_load_committed_events_per_second",
            "Events committed in the last second",
            registry=r,
        )
        self.p99 = Gauge(
            "simulator_load_message_latency_p99_seconds",
            "p99 of message latency so far (worst generator)",
            registry=r,
        )
        self.resends = Gauge("simulator_load_resends", "Submissions resent so far", registry=r)
        self.mqtt = Gauge("simulator_load_mqtt_messages", "MQTT messages so far", registry=r)
        self.lost = Gauge("simulator_load_lost", "Submissions missing from the log", registry=r)
        self.duplicated = Gauge(
            "simulator_load_duplicated", "Submissions in the log more than once", registry=r
        )
        self.unfinished = Gauge(
            "simulator_load_unfinished_cases",
            "Cases still open when the drain ran out (late, not lost)",
            registry=r,
        )
        self.saturated = Gauge(
            "simulator_load_saturated", "1 when offered more than it carried", registry=r
        )
        self._head = 0
        self.server, self.thread = start_http_server(port, addr="127.0.0.1", registry=r)

    def update(self, snapshot: dict[str, Any]) -> None:
        head = int(snapshot["head"])
        if head > self._head:
            self.events.inc(head - self._head)
            self._head = head
        self.cases_started.set(snapshot["cases_started"])
        self.cases_completed.set(snapshot["cases_completed"])
        self.open.set(snapshot["open"])
        self.rate.set(snapshot["events_per_s"])
        self.p99.set(snapshot["p99_ms"] / 1000)
        self.resends.set(snapshot["resends"])
        self.mqtt.set(snapshot["mqtt_in"] + snapshot["mqtt_out"])

    def final(self, data: dict[str, Any]) -> None:
        self.lost.set(data["lost"])
        self.duplicated.set(data["duplicated"])
        self.unfinished.set(data["unfinished"]["cases"])
        self.saturated.set(1 if data["saturated"] else 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


__all__ = ["LoadMetrics"]
