"""Access control on the platform: grants (who may open which doors, when), credentials with a
truthful per-lock delivery state, freeze / unfreeze, expiry and anomalies (docs/access.md)."""
