"""A gateway process's tunables and counters (docs/gateway.md)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from anju.gateway.biometrics import BiometricOptions
from anju.gateway.firmware import FirmwareOptions
from anju.protocol.handshake import ChannelOptions
from anju.protocol.topics import check_instance


@dataclass(frozen=True)
class GatewayOptions:
    """Tunables of one gateway process (docs/gateway.md)."""

    instance: int = 0
    idle_timeout_seconds: float = 900.0
    batch_max_events: int = 500
    batch_max_delay_seconds: float = 0.1
    max_pending_events: int = 100_000
    failure_threshold: int = 10
    failure_window_seconds: float = 60.0
    command_poll_seconds: float = 1.0
    sweep_seconds: float = 5.0
    max_concurrent_handshakes: int = 32
    #: RESET at most once per device per this many seconds, and at most this many per second.
    reset_interval_seconds: float = 10.0
    max_resets_per_second: int = 200
    channel: ChannelOptions = field(default_factory=ChannelOptions)
    firmware: FirmwareOptions = field(default_factory=FirmwareOptions)
    biometrics: BiometricOptions = field(default_factory=BiometricOptions)

    def __post_init__(self) -> None:
        check_instance(self.instance)


@dataclass
class GatewayCounters:
    """What the gateway saw since it started (exported as metrics, docs/gateway.md)."""

    messages: int = 0
    hellos: int = 0
    handshakes: int = 0
    frames_accepted: int = 0
    duplicates: int = 0
    events_received: int = 0
    events_stored: int = 0
    events_duplicate: int = 0
    events_dropped: int = 0
    store_retries: int = 0
    records_verified: int = 0  # signed lock records whose signature verified (gateway/records)
    records_rejected: int = 0  # … that did not (forged, another device's, malformed): not used
    states: int = 0
    acks: int = 0
    commands_sent: int = 0
    evt_acks_sent: int = 0
    resets_sent: int = 0
    fw_chunks_sent: int = 0
    fw_not_offered: int = 0
    fw_reports: int = 0
    bio_data_sent: int = 0
    bio_not_offered: int = 0
    bio_reports: int = 0
    bio_acks_sent: int = 0
    sessions_ended: int = 0
    security_events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, int]:
        """Flat name → value, rejections as ``rejected.<reason>``."""
        flat = {k: v for k, v in vars(self).items() if isinstance(v, int)}
        flat.update({f"rejected.{reason}": n for reason, n in sorted(self.rejected.items())})
        return flat
