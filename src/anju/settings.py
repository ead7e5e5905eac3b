"""Settings: environment variables with prefix ``ANJU_``, an optional TOML file, then defaults.

Precedence (highest first): explicit overrides (CLI flags) > environment > TOML file > defaults.
The TOML file is ``$ANJU_CONFIG_FILE`` if set, else ``<data_dir>/anju.toml`` when it exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Every knob anju has. See README "Configuration reference"."""

    model_config = SettingsConfigDict(env_prefix="ANJU_", extra="forbid", frozen=True)

    data_dir: Path = Field(
        default=Path(".anju"), description="Embedded database, key files, broker state."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/anju.db. "
        "PostgreSQL: postgresql+asyncpg://user@host/db",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="External MQTT broker (production): mqtt://host:1883 or mqtts://host:8883; "
        "add ?version=3 for brokers that speak only MQTT 3.1.1. Unset: embedded broker.",
    )
    mqtt_host: str = Field(default="127.0.0.1", description="Embedded MQTT broker address.")
    # Not 1883: a system Mosquitto often holds that port, and the embedded broker is a separate one.
    mqtt_port: int = Field(
        default=1884,
        ge=0,
        le=65535,
        description="Embedded broker port; 0 turns broker and gateway off.",
    )
    gateway_instance: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Gateway instance number, unique per process on a broker.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    key_provider: str = Field(default="file", description="Master key provider: 'file'.")
    key_file: Path | None = Field(default=None, description="Default <data_dir>/keys/keyring.json.")

    audit_origin: str = Field(default="anju.local/audit", description="Origin line of checkpoints.")
    audit_checkpoint_every: int = Field(default=1000, ge=1, description="Sign after N new entries.")
    audit_checkpoint_seconds: float = Field(
        default=10.0, gt=0, description="...or after T seconds."
    )

    password_min_length: int = Field(default=12, ge=8)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=900, ge=1)
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    session_idle_seconds: int = Field(default=30 * 60, ge=60)
    second_factor_window_seconds: int = Field(
        default=300,
        ge=30,
        description="How long a TOTP step-up stays valid for sensitive operations.",
    )
    api_key_ttl_days: int = Field(default=365, ge=1)

    max_request_bytes: int = Field(default=1 << 20, ge=1024)

    # Unlock record alarms (docs/records.md); unlock records' retention is the retention
    # policy ``unlock_record`` (``retention_days``, docs/retention.md).
    failure_alarm_threshold: int = Field(default=5, ge=2, description="Denials at one lock …")
    failure_alarm_window_seconds: int = Field(default=120, ge=10, description="… within this.")
    site_failure_alarm_threshold: int = Field(
        default=20, ge=2, description="Denials across an organisation's doors in the window."
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback / private addresses (tests, closed LANs).",
    )
    retention_days: dict[str, int] = Field(
        default_factory=dict,
        description="Retention overrides in days per data kind, e.g. "
        '{"biometric_capture_log": 90}; see docs/retention.md for the kinds and their minimums.',
    )
    retention_sweep_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="How often `anju serve` runs the retention sweep; 0: never.",
    )

    # Regulator reporting (docs/reporting.md).
    regulator_enabled: bool = Field(
        default=False,
        description="Send queued regulator reports (reports are queued either way).",
    )
    regulator_url: str | None = Field(
        default=None,
        description="Base URL of the regulator's report receiver (POST <url>/reports).",
    )
    regulator_public_key: Path | None = Field(
        default=None, description="PEM file of the regulator's SM2 public key (envelope recipient)."
    )
    regulator_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    regulator_retry_cap_seconds: float = Field(
        default=600.0, ge=1, le=86400, description="Longest back-off between two attempts."
    )

    ctid_config: Path | None = Field(
        default=None,
        description="CTID-style identity service client configuration (JSON: base_url, app_id, "
        "app_secret_hex, service_public_key_pem; docs/people.md). Unset: no network identity "
        "verification over the API.",
    )

    @field_validator("database_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force (embedded SQLite unless configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'anju.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        """The file provider's keyring path."""
        return self.key_file or (self.data_dir / "keys" / "keyring.json")

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file_for(init_settings)
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _toml_file_for(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = os.environ.get("ANJU_CONFIG_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"ANJU_CONFIG_FILE={explicit} does not exist")
        return path
    init_values: dict[str, Any] = init_settings()
    data_dir = init_values.get("data_dir") or os.environ.get("ANJU_DATA_DIR") or ".anju"
    candidate = Path(data_dir) / "anju.toml"
    return candidate if candidate.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings; ``None`` overrides are ignored so CLI defaults keep the environment."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
