"""The gateway's live counters as Prometheus metrics (docs/gateway.md, "Counters").

:class:`GatewayCollector` reads :class:`~anju.gateway.ingest.GatewayCounters` and the session
table at each scrape: nothing is counted twice. ``anju serve`` registers it on the app's
registry when the gateway runs in the same process as the HTTP API.

* every counter ``x`` → ``anju_gateway_x_total`` (new counters appear without changes here);
* ``rejected.<reason>`` → ``anju_gateway_rejected_total{reason="<reason>"}``;
* ``anju_gateway_sessions``: confirmed device sessions this instance holds now;
* ``anju_gateway_command_notices_total`` / ``anju_gateway_command_listens_total``: PostgreSQL
  command notices received, and how many times the LISTEN connection was (re)opened;
* with the embedded broker: ``anju_mqtt_connections_accepted_total``,
  ``anju_mqtt_connections_refused_total``, ``anju_mqtt_topics_denied_total``.

Every metric carries the gateway's ``instance`` label.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from anju.gateway.runner import Gateway

REJECTED_PREFIX = "rejected."

HELP = {
    "messages": "Uplink MQTT messages received.",
    "hellos": "Handshake HELLOs answered or refused.",
    "handshakes": "Handshakes completed (sessions confirmed).",
    "frames_accepted": "DATA frames authenticated and accepted.",
    "duplicates": "Redelivered DATA frames dropped.",
    "events_received": "Device events received.",
    "events_stored": "Device events stored.",
    "events_duplicate": "Device events already stored (sent again).",
    "events_dropped": "Device events dropped because the queue was full.",
    "store_retries": "Failed event batches retried.",
    "states": "State reports received.",
    "acks": "Command acks received.",
    "commands_sent": "Commands published to devices.",
    "sessions_ended": "Sessions ended (idle, moved, or device no longer admitted).",
    "security_events": "Devices flagged for repeated failures.",
}
BROKER_HELP = {
    "connections_accepted": "MQTT connections the embedded broker accepted.",
    "connections_refused": "MQTT connections the embedded broker refused.",
    "topics_denied": "Publishes, subscriptions or deliveries the embedded broker denied.",
}


class GatewayCollector:
    """Reads one running gateway's counters at each scrape."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        instance = str(self.gateway.options.instance)
        rejected = CounterMetricFamily(
            "anju_gateway_rejected",
            "Refused messages by reason (protocol error codes, refused.<code>, internal_error).",
            labels=["instance", "reason"],
        )
        for name, value in self.gateway.counters.items():
            if name.startswith(REJECTED_PREFIX):
                rejected.add_metric([instance, name.removeprefix(REJECTED_PREFIX)], value)
                continue
            text = HELP.get(name, f"Gateway counter {name} (docs/gateway.md).")
            yield _counter(f"anju_gateway_{name}", text, instance, value)
        yield rejected
        sessions = GaugeMetricFamily(
            "anju_gateway_sessions",
            "Confirmed device sessions this gateway instance holds.",
            labels=["instance"],
        )
        sessions.add_metric([instance], len(self.gateway.ingest.held_devices()))
        yield sessions
        notices = self.gateway.notices
        for name, value, text in (
            ("command_notices", notices.notices, "Command notices from other processes."),
            ("command_listens", notices.connections, "Times LISTEN anju_commands was opened."),
        ):
            yield _counter(f"anju_gateway_{name}", text, instance, value)
        broker = self.gateway.embedded_broker
        if broker is not None:
            for name, value in asdict(broker.authority.counters).items():
                yield _counter(f"anju_mqtt_{name}", BROKER_HELP[name], instance, value)


def _counter(name: str, text: str, instance: str, value: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["instance"])
    family.add_metric([instance], value)
    return family
