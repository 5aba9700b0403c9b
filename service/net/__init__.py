"""The network edge, in front of aiohttp's handler: TLS (tls.py) and the connection cap and
header deadlines (connections.py)."""
