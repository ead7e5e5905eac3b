"""Firmware updates (OTA): signed packages, staged rollouts, device-reported states
(docs/firmware.md; the package format and messages are in anju.protocol.firmware)."""
