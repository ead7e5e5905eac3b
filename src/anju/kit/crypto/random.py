"""Randomness: always the operating system's CSPRNG (``getrandom``/``/dev/urandom``)."""

import secrets


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS CSPRNG."""
    return secrets.token_bytes(n)
