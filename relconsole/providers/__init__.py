"""Adapters to the systems that run releases, behind the Protocols in `base`."""
