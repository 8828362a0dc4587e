"""Real Redis topologies on loopback for tests and benches: a Redis Cluster and a Sentinel group.

* :class:`ClusterTopology`: ``masters`` redis-servers with ``--cluster-enabled yes`` (and
  ``replicas`` replicas per master, for failover tests), joined with
  ``redis-cli --cluster create ... --cluster-yes``. ``url`` is the ``redis+cluster://`` form
  Tabcast's ``REDIS_URL`` takes.
* :class:`SentinelTopology`: a master, a replica and three ``redis-sentinel`` processes watching
  it. ``env`` is what Tabcast reads (``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER``); ``url`` the
  equivalent ``redis+sentinel://`` form.

Every process listens on a free loopback port, keeps no data on disk and is stopped by
``stop()`` (tests use them as fixtures). ``kill_master`` kills a master with SIGKILL, as a crash,
and ``wait_failover`` waits until a replica has taken over.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .processes import RedisProcess, free_port, temp_dir, wait_until

SENTINEL_MASTER = "tabcast"


def redis_command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command through redis-cli; its raw output (raises if redis-cli fails)."""
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli -p {port} {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Server(RedisProcess):
    """A redis-server with extra arguments (cluster mode, replica of ...)."""

    def __init__(self, *extra: str, port: int | None = None):
        super().__init__(port)
        self.extra = list(extra)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *self.extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, 10, what=f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: a crash (no goodbye to the cluster or the sentinels)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args: str) -> str:
        return redis_command(self.port, *args)


class ClusterTopology:
    """A Redis Cluster of ``masters`` shards, each with ``replicas`` replicas, on loopback.

    ``node_timeout`` (ms) is how long a master may be unreachable before its replica takes over;
    short here so failover tests take seconds.
    """

    def __init__(self, masters: int = 3, replicas: int = 0, node_timeout: int = 1500):
        if shutil.which("redis-cli") is None:
            raise RuntimeError("redis-cli is not installed: run bin/test (it installs redis-server, "
                               "which brings it) or apt-get install redis-tools")
        self.masters_count, self.replicas_count = masters, replicas
        self.node_timeout = node_timeout
        self.servers: list[Server] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(s.address for s in self.servers if s.alive)

    def start(self) -> "ClusterTopology":
        try:
            for _ in range(self.masters_count * (1 + self.replicas_count)):
                port = free_port()
                self.servers.append(Server(
                    # The bus port is port + 10000 unless given: past 65535 for most free ports.
                    "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", str(self.node_timeout),
                    # A replica may always take over (its link to the master counts as fresh).
                    "--cluster-replica-validity-factor", "0",
                    # Slots of a dead shard stay unserved while the rest keep answering.
                    "--cluster-require-full-coverage", "no",
                    "--cluster-allow-reads-when-down", "no", port=port).start())
            if self.masters_count >= 3:
                created = subprocess.run(
                    ["redis-cli", "--cluster", "create", *(s.address for s in self.servers),
                     "--cluster-replicas", str(self.replicas_count), "--cluster-yes"],
                    capture_output=True, text=True, timeout=60)
                if created.returncode != 0:
                    raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
            else:
                self._create_small()
            wait_until(self._settled, 30, interval=0.1, what="the cluster to be ok on every node")
        except BaseException:
            self.stop()
            raise
        return self

    def _create_small(self) -> None:
        """redis-cli creates clusters of 3 masters or more: fewer (a 1-shard cluster, for
        comparisons) get their slots by hand, split evenly, and meet each other."""
        if self.replicas_count:
            raise ValueError("replicas need at least 3 masters (as redis-cli --cluster create)")
        per = 16384 // self.masters_count
        for i, server in enumerate(self.servers):
            last = 16383 if i == self.masters_count - 1 else (i + 1) * per - 1
            server.command("CLUSTER", "ADDSLOTSRANGE", str(i * per), str(last))
            if i:
                server.command("CLUSTER", "MEET", "127.0.0.1", str(self.servers[0].port))

    def _settled(self) -> bool:
        """Every live node says cluster_state:ok and knows every master (and replica) by now."""
        expected_masters = self.masters_count
        for server in self.servers:
            if not server.alive:
                continue
            try:
                if "cluster_state:ok" not in server.command("CLUSTER", "INFO"):
                    return False
                nodes = self._nodes(server)
            except (RuntimeError, subprocess.TimeoutExpired):
                return False
            masters = [n for n in nodes if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]]
            if len(masters) != expected_masters:
                return False
            if any(n["link"] != "connected" for n in nodes if "myself" not in n["flags"] and "fail" not in n["flags"]
                   and "noaddr" not in n["flags"]):
                return False
        return True

    @staticmethod
    def _nodes(server: Server) -> list[dict]:
        nodes = []
        for line in server.command("CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            nodes.append({"id": parts[0], "address": parts[1].split("@")[0], "flags": parts[2].split(","),
                          "master": parts[3], "link": parts[7], "slots": parts[8:]})
        return nodes

    def _live(self) -> Server:
        return next(s for s in self.servers if s.alive)

    def server_at(self, address: str) -> Server:
        return next(s for s in self.servers if s.address == address)

    def masters(self) -> list[Server]:
        """The live masters that serve slots, as the cluster sees them now."""
        nodes = self._nodes(self._live())
        return [self.server_at(n["address"]) for n in nodes
                if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]
                and self.server_at(n["address"]).alive]

    def master_of(self, key: str) -> Server:
        """The master serving ``key``'s slot (a key or a sharded pub/sub channel)."""
        slot = int(self._live().command("CLUSTER", "KEYSLOT", key))
        for node in self._nodes(self._live()):
            if "master" not in node["flags"] or "fail" in node["flags"]:
                continue
            for part in node["slots"]:
                if part.startswith("["):
                    continue  # a slot being migrated
                low, _, high = part.partition("-")
                if int(low) <= slot <= int(high or low):
                    return self.server_at(node["address"])
        raise LookupError(f"no master serves slot {slot}")

    def replicas_of(self, master: Server) -> list[Server]:
        nodes = self._nodes(self._live())
        master_id = next(n["id"] for n in nodes if n["address"] == master.address)
        return [self.server_at(n["address"]) for n in nodes if n["master"] == master_id]

    def node_id(self, server: Server) -> str:
        return server.command("CLUSTER", "MYID").strip()

    def move_slot(self, key: str, to: Server) -> int:
        """Reshard: hand the slot of ``key`` (with its keys) to the master ``to``; returns the slot.

        The steps ``redis-cli --cluster reshard`` takes for one slot: IMPORTING / MIGRATING,
        MIGRATE of its keys, then every master is told the slot's new owner."""
        source = self.master_of(key)
        if source is to:
            return int(source.command("CLUSTER", "KEYSLOT", key))
        slot = source.command("CLUSTER", "KEYSLOT", key).strip()
        source_id, target_id = self.node_id(source), self.node_id(to)
        to.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, "100").split():
            source.command("MIGRATE", "127.0.0.1", str(to.port), "", "0", "5000", "KEYS", *keys)
        for server in [to, source, *(m for m in self.masters() if m not in (to, source))]:
            server.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        wait_until(lambda: self.master_of(key) is to and self._agreed(), 10, interval=0.05,
                   what=f"slot {slot} to move to {to.address}")
        return int(slot)

    def kill_master(self, master: Server) -> Server:
        """Kill a master (SIGKILL); returns it. ``wait_failover`` waits for its replica to take over."""
        self._heirs = getattr(self, "_heirs", {})
        self._heirs[master.address] = {self.node_id(r) for r in self.replicas_of(master)}
        master.kill()
        return master

    def wait_failover(self, old: Server, timeout: float = 30) -> Server:
        """Wait until a replica of the killed ``old`` master serves its slots, as every live node
        sees it; returns that new master."""
        heirs = self._heirs[old.address]

        def promoted() -> Server | None:
            try:
                nodes = self._nodes(self._live())
            except (RuntimeError, subprocess.TimeoutExpired):
                return None
            for node in nodes:
                if node["id"] in heirs and "master" in node["flags"] and node["slots"]:
                    return self.server_at(node["address"])
            return None

        new = wait_until(promoted, timeout, interval=0.1, what=f"a replica to take over from {old.address}")
        wait_until(self._agreed, timeout, interval=0.1, what="every node to agree on the new master")
        return new

    def _agreed(self) -> bool:
        for server in self.servers:
            if server.alive:
                try:
                    if "cluster_state:ok" not in server.command("CLUSTER", "INFO"):
                        return False
                except (RuntimeError, subprocess.TimeoutExpired):
                    return False
        return True

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class SentinelTopology:
    """A master, a replica and three sentinels (quorum 2) on loopback.

    ``down_after`` (ms): how long the master may be silent before the sentinels call it down.
    """

    def __init__(self, down_after: int = 1000, master_name: str = SENTINEL_MASTER):
        self.binary = shutil.which("redis-sentinel")
        if self.binary is None:
            raise RuntimeError("redis-sentinel is not installed: run bin/test (it installs it) or "
                               "apt-get install redis-sentinel")
        self.down_after, self.master_name = down_after, master_name
        self.master: Server | None = None
        self.replica: Server | None = None
        self.sentinels: list[subprocess.Popen] = []
        self.sentinel_ports: list[int] = []
        self.dir = temp_dir("tabcast-sentinel-")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.master_name}"

    @property
    def env(self) -> dict[str, str]:
        """What a Tabcast process reads to use this topology (instead of REDIS_URL)."""
        return {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
                "REDIS_SENTINEL_MASTER": self.master_name}

    def start(self) -> "SentinelTopology":
        try:
            self.master = Server().start()
            self.replica = Server("--replicaof", "127.0.0.1", str(self.master.port)).start()
            for _ in range(3):
                port = free_port()
                conf = Path(self.dir) / f"sentinel-{port}.conf"
                conf.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"sentinel monitor {self.master_name} 127.0.0.1 {self.master.port} 2\n"
                    f"sentinel down-after-milliseconds {self.master_name} {self.down_after}\n"
                    f"sentinel failover-timeout {self.master_name} 5000\n"
                    f"sentinel parallel-syncs {self.master_name} 1\n")
                self.sentinels.append(subprocess.Popen([self.binary, str(conf)], stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.DEVNULL))
                self.sentinel_ports.append(port)
            for port in self.sentinel_ports:
                wait_until(lambda port=port: _answers(port), 10, what=f"redis-sentinel on {port}")
            wait_until(self._ready, 30, interval=0.1, what="the sentinels to know the replica and each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                info = redis_command(port, "SENTINEL", "MASTER", self.master_name).split("\n")
                fields = dict(zip(info[::2], info[1::2], strict=False))
                if int(fields.get("num-slaves", 0)) < 1 or int(fields.get("num-other-sentinels", 0)) < 2:
                    return False
            link = self.replica.command("INFO", "replication")
            return "master_link_status:up" in link
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            return False

    def master_address(self) -> str:
        """The master the first live sentinel names now (host:port)."""
        for port in self.sentinel_ports:
            try:
                host, master_port = redis_command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                  self.master_name).split()
                return f"{host}:{master_port}"
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                continue
        raise RuntimeError("no sentinel answers")

    def kill_master(self) -> Server:
        """SIGKILL the current master; the sentinels promote the replica (``wait_failover``)."""
        self.master.kill()
        return self.master

    def wait_failover(self, timeout: float = 30) -> Server:
        """Wait until the sentinels name the replica as master and it accepts writes; returns it."""
        def promoted() -> bool:
            try:
                return self.master_address() == self.replica.address and \
                    "role:master" in self.replica.command("INFO", "replication")
            except (RuntimeError, subprocess.TimeoutExpired):
                return False

        wait_until(promoted, timeout, interval=0.1, what="the sentinels to promote the replica")
        self.master, self.replica = self.replica, self.master
        return self.master

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for server in (self.master, self.replica):
            if server is not None:
                server.stop()


def wait_seconds(check, timeout: float, what: str) -> float:
    """``wait_until`` that returns how many seconds it took."""
    started = time.monotonic()
    wait_until(check, timeout, what=what)
    return time.monotonic() - started


# --- for tests: one client for any REDIS_URL form, and the topologies as pytest fixtures ---


def async_client(url: str):
    """An async redis-py client for a ``redis://``, ``redis+cluster://`` or ``redis+sentinel://`` URL."""
    from service.realtime import redis_connect

    target = redis_connect.parse_url(url)
    if target.kind == redis_connect.CLUSTER:
        return redis_connect.cluster_client(target)
    if target.kind == redis_connect.SENTINEL:
        return redis_connect.sentinel_manager(target).master_for(target.master, db=target.db, **target.auth())
    from redis import asyncio as aioredis

    return aioredis.Redis.from_url(url)


def sync_client(url: str):
    """The same, synchronous (for tests that poll Redis from a thread)."""
    from redis import Redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    from service.realtime import redis_connect

    target = redis_connect.parse_url(url)
    if target.kind == redis_connect.CLUSTER:
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts], decode_responses=True)
    if target.kind == redis_connect.SENTINEL:
        return Sentinel(list(target.hosts)).master_for(target.master, db=target.db, decode_responses=True)
    return Redis.from_url(url, decode_responses=True)


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key of a prefix (one at a time: on a cluster they live in many slots)."""
    client = async_client(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for key in keys:
            await client.delete(key)
    finally:
        await client.aclose()
