"""Authentication: users' credentials, password hashing, tokens, sessions, lockout, TOTP."""
