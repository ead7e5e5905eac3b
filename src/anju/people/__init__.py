"""People: real-name registration of individuals and organisations, identity verification and
the rights of the person (see docs/people.md)."""
