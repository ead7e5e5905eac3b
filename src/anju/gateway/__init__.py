"""The platform's MQTT gateway: brokers (embedded amqtt, Mosquitto files), the one MQTT client,
handshakes, secure channels, event ingest and command delivery (docs/gateway.md)."""
