"""The platform's device registry: products, devices, device CA, provisioning (docs/devices.md)."""
