"""Where the calls went: calls per server from the suite's ``_peers.csv`` and ``_peers_history.csv``.

A peer is a server address as grpc names it (``ipv4:10.0.0.7:50051``). Its fair share is an equal
part of the calls among every peer the run knows of (those that answered, and those the target listed
that none reached); a peer with more than ``SKEW_FACTOR`` times its fair share is flagged, and so is a peer that
no call reached (with two servers, one taking everything is exactly twice its fair share: only the idle one shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SKEW_FACTOR = 2.0


@dataclass
class PeerShare:
    """One server: calls it answered and its share of all of them (0..1)."""

    peer: str
    requests: int
    share: float


@dataclass
class PeerSpread:
    """The spread of a run's calls over its servers, and calls/s per server over time when there is a history."""

    peers: list[PeerShare]
    fair_share: float
    seconds: np.ndarray | None = None
    per_second: dict[str, np.ndarray] | None = None

    @property
    def skewed(self) -> list[PeerShare]:
        """Peers that took more than SKEW_FACTOR times their fair share."""
        return [peer for peer in self.peers if peer.share > SKEW_FACTOR * self.fair_share]

    @property
    def idle(self) -> list[PeerShare]:
        """Peers the target listed that no call reached (none when there is one server)."""
        return [peer for peer in self.peers if peer.requests == 0] if len(self.peers) > 1 else []

    def warnings(self) -> list[str]:
        """One sentence per skewed peer, one for the idle ones."""
        advice = ("(one connection per process is pinned to one server; see --grpc-connections and "
                  "--grpc-lb round_robin)")  # fmt: skip
        lines = [f"{peer.peer} answered {peer.share:.0%} of the calls, more than {SKEW_FACTOR:g}x its fair share "
                 f"({self.fair_share:.0%} of {len(self.peers)} servers): the load did not reach every replica "
                 f"evenly {advice}" for peer in self.skewed]  # fmt: skip
        if self.idle:
            lines.append(f"{', '.join(peer.peer for peer in self.idle)}: no call reached "
                         f"{'it' if len(self.idle) == 1 else 'them'} ({len(self.idle)} of {len(self.peers)} servers "
                         f"idle) {advice}")  # fmt: skip
        return lines


def spread(peers: pd.DataFrame | None, history: pd.DataFrame | None) -> PeerSpread | None:
    """The spread from ``_peers.csv`` (Peer, Requests) and ``_peers_history.csv`` (Timestamp, Peer, cumulative
    Requests); None without calls per peer."""
    if peers is None or peers.empty or int(peers["Requests"].sum()) <= 0:
        return None
    total = int(peers["Requests"].sum())
    shares = [PeerShare(str(row["Peer"]), int(row["Requests"]), int(row["Requests"]) / total)
              for _, row in peers.sort_values("Requests", ascending=False, kind="stable").iterrows()]  # fmt: skip
    result = PeerSpread(shares, 1 / len(shares))
    if history is not None and not history.empty:
        wide = history.pivot_table(index="Timestamp", columns="Peer", values="Requests", aggfunc="last")
        wide = wide.sort_index().ffill().fillna(0)
        if len(wide) > 1:
            stamps = wide.index.to_numpy(dtype=float)
            gaps = np.diff(stamps)
            result.seconds = stamps[1:] - stamps[0]
            result.per_second = {str(peer): np.diff(wide[peer].to_numpy(dtype=float)) / gaps for peer in wide.columns}
    return result
