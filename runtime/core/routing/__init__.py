"""Routers and what they see; `runtime.core.router` is the registry."""
