"""Biometrics on the platform: 1:1 checks with a capture log, revocable encrypted templates.

The face engine itself (detection, embedding, templates, liveness) is :mod:`anju.face`, shared
with the device software; this package adds what only the platform has: the database, the
keyring, the audit log and the PI vault.
"""
