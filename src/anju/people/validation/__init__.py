"""Format checks of what a person or organisation registers: pure functions, no I/O."""
