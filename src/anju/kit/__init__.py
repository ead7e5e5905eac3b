"""Domain-free building blocks: crypto facade, keys, envelope, blind index, masking, Merkle log."""
