"""Peers by name: a trunks file (CIDR or IP[:port] -> trunk name) and the responder table.

An operator knows the carrier behind 192.0.2.0/28 as "carrier-a"; with ``--trunks FILE``
every table that names a peer (``address:port``) says ``carrier-a (192.0.2.5:5060)``, and
the ladder's columns too. The file is CSV, one peer per line: ``192.0.2.0/28,carrier-a``,
``198.51.100.7,pbx-b`` or ``198.51.100.7:5080,pbx-b-alt``; ``#`` starts a comment. A peer
matches its most specific entry: address and port, then address, then the longest prefix.
"""

from __future__ import annotations

import csv
import ipaddress
import os
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from sipstats import schema
from sipstats.analyze import keys
from sipstats.checks import parse_peer

if TYPE_CHECKING:
    from sipstats.analyze import Analysis

#: Trunk entries read from one file (a longer file is refused, not cut).
MAX_ENTRIES: Final = 100_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Trunks:
    """Peer name lookup: exact ``(address, port)``, exact address, then networks."""

    endpoints: dict[tuple[str, int], str]
    addresses: dict[str, str]
    networks: tuple[tuple[Network, str], ...]
    """Longest prefix first."""

    def name_of(self, endpoint: str) -> str | None:
        """The trunk of ``address:port`` (``[v6]:port``) or a bare address; None if none."""
        try:
            address, port = parse_peer(endpoint)
        except ValueError:
            return None
        if port is not None and (address, port) in self.endpoints:
            return self.endpoints[(address, port)]
        if address in self.addresses:
            return self.addresses[address]
        ip = ipaddress.ip_address(address)
        return next((name for net, name in self.networks if ip in net), None)

    def label(self, endpoint: str) -> str:
        """``name (endpoint)`` for a known peer, the endpoint unchanged otherwise."""
        name = self.name_of(endpoint)
        return endpoint if name is None else f"{name} ({endpoint})"


def load_trunks(path: str | os.PathLike[str]) -> Trunks:
    """Read a trunks file; ``ValueError`` naming the line for anything it cannot use."""
    endpoints: dict[tuple[str, int], str] = {}
    addresses: dict[str, str] = {}
    networks: list[tuple[Network, str]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            if number > MAX_ENTRIES:
                raise ValueError(f"{path}: more than {MAX_ENTRIES} lines")
            if len(row) < 2 or not row[1].strip():
                raise ValueError(f"{path}:{number}: expected 'CIDR or IP[:port],name'")
            peer, name = row[0].strip(), row[1].strip()
            if "/" in peer:
                try:
                    networks.append((ipaddress.ip_network(peer, strict=False), name))
                except ValueError:
                    raise ValueError(f"{path}:{number}: not a network: {peer!r}") from None
                continue
            try:
                address, port = parse_peer(peer)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: {error}") from None
            if port is None:
                addresses[address] = name
            else:
                endpoints[(address, port)] = name
    networks.sort(key=lambda entry: entry[0].prefixlen, reverse=True)
    return Trunks(endpoints, addresses, tuple(networks))


def _relabel(column: pd.Series, trunks: Trunks) -> pd.Series:
    """An endpoint column with trunk names; categorical columns through their categories."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = [trunks.label(str(value)) for value in column.cat.categories]
        if len(set(labels)) == len(labels):
            return column.cat.rename_categories(labels)
        return column.astype("str").map(trunks.label).astype("category")
    return column.map(lambda value: value if pd.isna(value) else trunks.label(str(value)))


#: Analysis tables and their columns that hold ``address:port`` of a peer.
ENDPOINT_COLUMNS: Final = {
    "calls": ("src", "dst"),
    "transactions": ("client", "server"),
    "by_peer": ("responder", "requester"),
    "by_responder": ("responder",),
}


def apply_trunks(analysis: Analysis, trunks: Trunks) -> Analysis:
    """The analysis with every peer column named by ``trunks`` (and the ladder using them)."""
    changes: dict[str, object] = {"trunks": trunks}
    for table, columns in ENDPOINT_COLUMNS.items():
        changes[table] = analysis.changed(table, partial(_relabeled, columns, trunks))
    return analysis.replaced(**changes)


def _relabeled(columns: tuple[str, ...], trunks: Trunks, table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with trunk names in ``columns``."""
    frame = table.copy()
    for column in columns:
        frame[column] = _relabel(frame[column], trunks)
    return frame


#: The transactions' columns :func:`by_responder` reads (what is kept to build it later).
RESPONDER_COLUMNS: Final = ["method", "final_status", "server"]


def by_responder(transactions: pd.DataFrame) -> pd.DataFrame:
    """responder (``address:port``), invites (INVITE transactions answered), answered
    (share with 2xx), codes ('200x50|486x3', most frequent first), from
    :data:`RESPONDER_COLUMNS` of ``transactions``.

    Counted on the server column's codes: its text is read once per responder."""
    t = transactions
    final = t["final_status"]
    invite = (t["method"] == "INVITE").to_numpy(dtype=bool) & final.notna().to_numpy(dtype=bool)
    server = keys.codes(t["server"])[invite]
    code = final.to_numpy(dtype=np.int64, na_value=0)[invite]
    named = server >= 0
    server, code = server[named], code[named]
    if not len(server):
        return schema.empty(schema.BY_RESPONDER)
    # responders numbered in text order, as the table lists those with as many invites
    responder = keys.categorical(t["server"].cat.categories, server)
    group = np.asarray(responder.codes, dtype=np.int64)
    count = len(responder.categories)
    invites = np.bincount(group, minlength=count)
    answered = np.bincount(group, weights=(code >= 200) & (code <= 299), minlength=count)
    _, texts = keys.code_texts(group, code)
    table = pd.DataFrame(
        {
            "responder": responder.categories.array,
            "invites": invites.astype(np.int64),
            "answered": answered / invites,
            "codes": pd.array(texts, dtype="str"),
        }
    )
    table = table.iloc[np.argsort(-invites, kind="stable")]
    return schema.conform(table, schema.BY_RESPONDER)
