"""`--metrics-port`: the live figures as Prometheus metrics on loopback."""

import urllib.request

from simulator.brokers.mosquitto import free_port
from simulator.load.metrics import LoadMetrics


def test_metrics_are_served_and_follow_the_progress() -> None:
    """Progress snapshots become counters and gauges a Prometheus scrape reads."""
    metrics = LoadMetrics(free_port())
    try:
        snapshot = {
            "head": 120,
            "cases_started": 40,
            "cases_completed": 30,
            "open": 10,
            "events_per_s": 99.5,
            "p99_ms": 12.5,
            "resends": 2,
            "mqtt_in": 300,
            "mqtt_out": 200,
        }
        metrics.update(snapshot)
        metrics.update(snapshot | {"head": 150})
        metrics.final({"lost": 0, "duplicated": 0, "unfinished": {"cases": 7}, "saturated": True})
        port = metrics.server.server_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        metrics.close()
    body = text.decode()
    assert "simulator_load_committed_events_total 150.0" in body
    assert "simulator_load_cases_open 10.0" in body
    assert "simulator_load_message_latency_p99_seconds 0.0125" in body
    assert "simulator_load_lost 0.0" in body
    assert "simulator_load_unfinished_cases 7.0" in body
    assert "simulator_load_saturated 1.0" in body
