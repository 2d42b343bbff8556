"""Authentication: credentials (Argon2id), opaque session tokens, login throttling, TOTP."""
