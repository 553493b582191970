"""Package layout: the folders at the repository root install under one namespace,
`agentrt.` (`runtime/` is `agentrt.runtime`, `kvcache/` is `agentrt.kvcache`, ...), so
that a user's own `programs` or `runtime` package can neither shadow agentrt nor be
shadowed by it. Metadata and dependencies are in pyproject.toml."""
from setuptools import find_packages, setup

ROOTS = ("runtime", "programs", "toolmgr", "kvcache")

packages = ["agentrt"]
for root in ROOTS:
    packages += [f"agentrt.{root}"] + [f"agentrt.{root}.{sub}" for sub in find_packages(root)]

setup(packages=packages,
      package_dir={"agentrt": "agentrt", **{f"agentrt.{root}": root for root in ROOTS}})
