"""``anju demo``: the whole stay journey on the embedded default, with simulated locks.

Everything runs for real — the platform's services, the gateway and broker, the reference lock
firmware with its software secure element, a network identity service and a regulator on
loopback — and every step checks what it should have caused. The data directory stays behind
for inspection (``anju audit verify --data-dir D``).
"""
