"""An edge's view of the origins: which one it plays, which ones it sends its callers' audio to.

Sans-IO (time a parameter). Each origin's ``Feeding`` and ``Active`` says its
media address, its lease's epoch and whether it is the active one
(``cascade.lease``). The edge plays the mix of, and obeys, the origin
claiming to be active with the highest epoch it has heard of (the fencing
token): an origin claiming a lower epoch is stale, whatever it says, and
what it sends is dropped. Among claims of one epoch (version-2 origins all
say 0) the one heard last wins, as before there were standbys.

Every origin heard within ``ttl`` gets the callers' audio: a hot standby
mixes in parallel, so that its mix is whole the moment it takes over.
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass
class OriginSeen:
    node: str
    media: Address
    epoch: int
    active: bool
    heard: float  # when it last said anything


class Origins:
    """The origins one edge has heard of, and the one it follows (``current``)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.seen: dict[str, OriginSeen] = {}
        self.current: OriginSeen | None = None
        self.switches = 0

    def heard(self, node: str, media: Address | None, epoch: int, active: bool, now: float) -> bool:
        """An origin said this (``media`` None: an ``Active``, which names none); True if
        the edge now follows another origin than before."""
        seen = self.seen.get(node)
        if seen is None:
            if media is None:
                # Its address comes with its Feeding; until then there is nothing to play.
                seen = OriginSeen(node, ("", 0), epoch, active, now)
            else:
                seen = OriginSeen(node, media, epoch, active, now)
            self.seen[node] = seen
        else:
            if media is not None:
                seen.media = media
            seen.epoch, seen.active, seen.heard = epoch, active, now
        return self._choose()

    def _choose(self) -> bool:
        claims = [o for o in self.seen.values() if o.active and o.media[1]]
        # The highest epoch; among claims of one epoch, the one heard last.
        best = max(claims, key=lambda o: (o.epoch, o.heard), default=None)
        current = self.current
        if best is None:
            return False
        changed = current is None or current.node != best.node
        self.current = best
        if changed:
            self.switches += 1
        return changed

    def is_current(self, source: Address) -> bool:
        """Whether media from ``source`` is from the origin this edge follows."""
        return self.current is not None and self.current.media == source

    def is_current_node(self, node: str) -> bool:
        """Whether ``node``'s directives are obeyed: the origin followed, or any before one is."""
        return self.current is None or self.current.node == node

    def hosts(self) -> set[str]:
        return {o.media[0] for o in self.seen.values() if o.media[1]}

    def uplinks(self, now: float) -> list[Address]:
        """The origins heard within ``ttl``: each gets the callers' audio."""
        return [o.media for o in self.seen.values() if o.media[1] and now - o.heard <= self.ttl]

    def forget_silent(self, now: float) -> list[str]:
        """Drop the origins silent for ``ttl``; their node ids."""
        gone = [n for n, o in self.seen.items() if now - o.heard > self.ttl]
        for node in gone:
            del self.seen[node]
            if self.current is not None and self.current.node == node:
                self.current = None
        if gone:
            self._choose()
        return gone
