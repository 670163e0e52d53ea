"""Vault notification sources: the socket audit device listener, the Enterprise event subscriber,
and the leading-edge dispatch both feed into reconciles."""
