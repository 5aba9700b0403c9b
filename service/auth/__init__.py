"""Users, expiring JWT access tokens, endpoint rules and the audit log (docs/auth.md).

With ``-auth none`` (the default) only the endpoint rules, ``-allowed-hosts`` and the audit log
apply, each when asked for; the DFFML API stays as open as the original's.
"""
