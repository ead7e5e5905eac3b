"""Properties: organisation → site → building → unit → room, room locks and common-door groups
(docs/properties.md)."""
