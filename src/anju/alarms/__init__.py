"""Alarms from locks and from the platform: active → acknowledged → cleared (docs/records.md)."""
