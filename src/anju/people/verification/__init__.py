"""Identity verification: providers (CTID-style network identity, ID-card reader with 1:1 face
verification, staff-assisted offline check) and the signed verification statement."""
