"""Adapters for ports the engine defines that need processes, files or the network (e.g. ``gpg``)."""
