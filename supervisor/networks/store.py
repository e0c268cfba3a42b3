"""hawserd's networks and their endpoints in meta.db. The endpoints table is the IPAM: an
address is a row, UNIQUE per network, chosen and inserted in one write transaction, so it is
never handed out twice, by two threads, two connections or across a restart."""
from __future__ import annotations  # the method list() shadows the builtin in annotations

import ipaddress
import json
import re
import secrets
import sqlite3
import threading
import time

from supervisor import sqlite
from supervisor.networks import ipam
from supervisor.networks.errors import (AlreadyExists, Exhausted, InUse, InvalidConfig,
                                        NetworkError, NotFound)

__all__ = ["NetworkStore", "NetworkError", "NotFound", "AlreadyExists", "Exhausted", "InUse",
           "InvalidConfig", "Ambiguous"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,            -- 64 hex
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    subnet TEXT NOT NULL,           -- CIDR, IPv4
    gateway TEXT NOT NULL,          -- the bridge's address
    bridge TEXT NOT NULL UNIQUE,    -- the bridge interface's name
    internal INTEGER NOT NULL,      -- 1: no traffic to or from outside the bridge
    labels TEXT NOT NULL,           -- JSON object
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    network_id TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    mac TEXT NOT NULL,
    aliases TEXT NOT NULL,          -- JSON list
    interface TEXT NOT NULL,        -- its name in the container: eth0, eth1...
    created REAL NOT NULL,
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, ip),
    UNIQUE (container_id, interface)
);
"""
NETWORK_FIELDS = ("id", "name", "driver", "subnet", "gateway", "bridge", "internal", "labels",
                  "created")
ENDPOINT_FIELDS = ("network_id", "container_id", "ip", "mac", "aliases", "interface", "created")
# docker's rule for names (containers and networks)
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
IFNAME_RE = re.compile(r"[a-zA-Z0-9_.-]{1,15}")


class Ambiguous(InvalidConfig):
    pass


class NetworkStore:
    def __init__(self, db_path: str):
        self.db = sqlite.connect(db_path)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    # networks
    def create(self, name: str, subnet: str, gateway: str, bridge: str, internal: bool = False,
               labels: dict | None = None, *, driver: str = "bridge", network_id: str = "",
               host_routes: list[str] = (), prefix: int = 24) -> dict:
        """A new network. subnet "" picks a free one of that prefix length (not overlapping
        another network or host_routes), gateway "" its first host address, bridge ""
        hw-<12 hex of the id>. A subnet is checked against the other networks in the same
        transaction, so two concurrent creates cannot get overlapping subnets."""
        if not NAME_RE.fullmatch(name or ""):
            raise InvalidConfig(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-]"
                                " are allowed")
        network_id = network_id or secrets.token_hex(32)
        bridge = bridge or "hw-" + network_id[:12]
        if not IFNAME_RE.fullmatch(bridge):
            raise InvalidConfig(f"invalid bridge name {bridge!r}: 1 to 15 of [a-zA-Z0-9_.-]")
        with self._write() as db:
            if db.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(f"network with name {name} already exists")
            if db.execute("SELECT 1 FROM networks WHERE bridge = ?", (bridge,)).fetchone():
                raise AlreadyExists(f"bridge {bridge} is already used by another network")
            taken = [r[0] for r in db.execute("SELECT subnet FROM networks")]
            if subnet:
                subnet, gateway = ipam.check_subnet(subnet, gateway or None, taken, host_routes)
            else:
                if gateway:
                    raise InvalidConfig("a gateway needs a subnet (--subnet) to go with it")
                subnet = ipam.free_subnet(taken, list(host_routes), prefix)
                gateway = ipam.gateway_of(subnet)
            row = (network_id, name, driver, subnet, gateway, bridge, int(bool(internal)),
                   json.dumps(labels or {}), time.time())
            try:
                db.execute(f"INSERT INTO networks ({','.join(NETWORK_FIELDS)}) VALUES "
                           f"({','.join('?' * len(NETWORK_FIELDS))})", row)
            except sqlite3.IntegrityError as e:
                raise AlreadyExists(f"network {name}: {e}") from None
        return self.get(network_id)

    def get(self, ref: str) -> dict:
        """The network a name, an id or an id prefix names (in that order, as docker)."""
        for where in ("name = ?", "id = ?"):
            rows = self._networks(where, (ref,))
            if rows:
                return rows[0]
        rows = self._networks("id LIKE ? ESCAPE '\\'", (_like_prefix(ref),)) if ref else []
        if len(rows) > 1:
            raise Ambiguous(f"network {ref} is ambiguous ({len(rows)} matches found based on "
                            "ID prefix)")
        if not rows:
            raise NotFound(f"network {ref} not found")
        return rows[0]

    def list(self) -> list[dict]:
        return self._networks("1 ORDER BY created", ())

    def delete(self, network_id: str) -> None:
        """Removes a network that no endpoint uses (InUse otherwise)."""
        with self._write() as db:
            row = db.execute("SELECT name FROM networks WHERE id = ?", (network_id,)).fetchone()
            if not row:
                raise NotFound(f"network {network_id} not found")
            users = [r[0] for r in db.execute(
                "SELECT container_id FROM endpoints WHERE network_id = ?", (network_id,))]
            if users:
                raise InUse(f"error while removing network: network {row[0]} id {network_id} "
                            f"has active endpoints ({len(users)} container(s))")
            db.execute("DELETE FROM networks WHERE id = ?", (network_id,))

    # endpoints
    def endpoints(self, network_id: str | None = None,
                  container_id: str | None = None) -> list[dict]:
        where, args = ["1"], []
        for column, value in (("network_id", network_id), ("container_id", container_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(ENDPOINT_FIELDS)} FROM endpoints WHERE "
                                   f"{' AND '.join(where)} ORDER BY created, rowid",
                                   args).fetchall()
        return [_endpoint(r) for r in rows]

    def allocate(self, network_id: str, container_id: str, aliases=(), ip: str | None = None,
                 interface: str = "eth0") -> dict:
        """An endpoint of the container on the network with the lowest free host address after
        the gateway, or the one asked for (AlreadyExists when taken, InvalidConfig when outside
        the subnet), Exhausted when the subnet is full."""
        if not IFNAME_RE.fullmatch(interface or ""):
            raise InvalidConfig(f"invalid interface name {interface!r}")
        with self._write() as db:
            net = db.execute("SELECT name, subnet, gateway FROM networks WHERE id = ?",
                             (network_id,)).fetchone()
            if not net:
                raise NotFound(f"network {network_id} not found")
            name, subnet, gateway = net
            if db.execute("SELECT 1 FROM endpoints WHERE network_id = ? AND container_id = ?",
                          (network_id, container_id)).fetchone():
                raise AlreadyExists(f"container {container_id} is already connected to "
                                    f"network {name}")
            if db.execute("SELECT 1 FROM endpoints WHERE container_id = ? AND interface = ?",
                          (container_id, interface)).fetchone():
                raise AlreadyExists(f"container {container_id} already has an interface "
                                    f"{interface}")
            taken = {r[0] for r in db.execute("SELECT ip FROM endpoints WHERE network_id = ?",
                                              (network_id,))}
            if ip:
                ip = ipam.check_address(subnet, gateway, ip)
                if ip in taken:
                    raise AlreadyExists(f"address {ip} is already in use on network {name}")
            else:
                ip = _lowest_free(subnet, taken | {gateway})
                if ip is None:
                    raise Exhausted(f"no address left on network {name} ({subnet})")
            row = (network_id, container_id, ip, ipam.mac_of(ip), json.dumps(list(aliases)),
                   interface, time.time())
            db.execute(f"INSERT INTO endpoints ({','.join(ENDPOINT_FIELDS)}) VALUES "
                       f"({','.join('?' * len(ENDPOINT_FIELDS))})", row)
        return _endpoint(row)

    def release(self, network_id: str, container_id: str) -> bool:
        """Frees the container's address on the network; False if it had none."""
        with self.lock:
            cur = self.db.execute("DELETE FROM endpoints WHERE network_id = ? AND "
                                  "container_id = ?", (network_id, container_id))
        return cur.rowcount > 0

    def release_all(self, container_id: str) -> list[dict]:
        """Frees every address of the container; returns the endpoints it had."""
        with self._write() as db:
            rows = db.execute(f"SELECT {','.join(ENDPOINT_FIELDS)} FROM endpoints WHERE "
                              "container_id = ?", (container_id,)).fetchall()
            db.execute("DELETE FROM endpoints WHERE container_id = ?", (container_id,))
        return [_endpoint(r) for r in rows]

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _networks(self, where: str, args) -> list[dict]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(NETWORK_FIELDS)} FROM networks WHERE "
                                   f"{where}", args).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(NETWORK_FIELDS, row))
            rec["internal"] = bool(rec["internal"])
            rec["labels"] = json.loads(rec["labels"])
            out.append(rec)
        return out

    def _write(self):
        return _WriteTransaction(self)


class _WriteTransaction:
    """The store's lock, and BEGIN IMMEDIATE: the database's write lock from the first read,
    so a choice made from what was read (a free address, a free subnet) cannot be made by
    another connection at the same time. Rolled back on any error."""

    def __init__(self, store: NetworkStore):
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store.lock.acquire()
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store.lock.release()
            raise
        return self.store.db

    def __exit__(self, kind, value, tb):
        try:
            if kind is None:
                try:
                    self.store.db.execute("COMMIT")
                except BaseException:
                    self.store.db.execute("ROLLBACK")  # a failed COMMIT leaves it open
                    raise
            else:
                self.store.db.execute("ROLLBACK")
        finally:
            self.store.lock.release()
        return False


def _lowest_free(subnet: str, taken: set[str]) -> str | None:
    for host in ipaddress.IPv4Network(subnet).hosts():
        if str(host) not in taken:
            return str(host)
    return None


def _endpoint(row) -> dict:
    rec = dict(zip(ENDPOINT_FIELDS, row))
    rec["aliases"] = json.loads(rec["aliases"])
    return rec


def _like_prefix(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
