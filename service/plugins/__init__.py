"""Plugin contracts, discovery and the built-in plugins."""
