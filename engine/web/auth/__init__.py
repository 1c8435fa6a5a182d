"""Passwords, TOTP, tokens, the secret box, throttling and the account/session service."""
