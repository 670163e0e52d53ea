"""syncd: keep Cloudflare Worker secrets equal to values held in HashiCorp Vault."""

__version__ = "0.1.0"
