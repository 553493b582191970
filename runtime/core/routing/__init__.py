"""Routers and what they see; `registry` picks a router by name."""
