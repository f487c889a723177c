"""Conformance of NBBS ports: the line protocol's client, its reference port, and the checks.

A port is any executable speaking PORTING.md's line protocol on stdin/stdout. ``protocol``
holds the client (``Port``) and the allocator interface over it (``PortAllocator``), which
the existing checkers drive unchanged; ``pyport`` is the protocol's reference implementation
over ``nbbs.impl.NBBS``; ``traces`` writes the conformance traces a port replays alone.
"""

from nbbs.conform.protocol import PROTOCOL_VERSION, Port, PortAllocator, PortError

__all__ = ["PROTOCOL_VERSION", "Port", "PortAllocator", "PortError"]
