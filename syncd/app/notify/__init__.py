"""Vault notification sources: the socket audit device listener, the Enterprise event subscriber,
and the debounced dispatch both feed into reconciles."""
