"""Cascaded bridge nodes: one origin mixes an event's call, edges answer its listeners.

``messages`` is the node-to-node vocabulary (sans-IO), ``bus`` carries it over
PostgreSQL ``LISTEN/NOTIFY``, ``feed`` moves the media between nodes as RTP,
``controller`` extends the call controller for either role, and ``node``
wires them into a ``bridge.service.Bridge``.
"""
