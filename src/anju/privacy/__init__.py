"""Personal information: the inventory, the vault (envelope encryption, crypto-shredding) and the
encrypted column type. ``PIVault`` lives in ``anju.privacy.vault`` (it needs the audit log)."""

from anju.privacy.column import EncryptedPI, Sealed
from anju.privacy.fields import INVENTORY
from anju.privacy.inventory import Category, PIField, Purpose, Sensitivity

__all__ = ["INVENTORY", "Category", "EncryptedPI", "PIField", "Purpose", "Sealed", "Sensitivity"]
