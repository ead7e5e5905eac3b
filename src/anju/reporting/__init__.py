"""Regulator reporting (L6): check-in, check-out and unlock reports, signed then enveloped,
delivered through an outbox to the regulator (public security) system (docs/reporting.md)."""
