"""redis-py, unchanged, against a master and a replica of ours: what an application that
reads from replicas does.

Usage: redis_py_replication.py HOST MASTER_PORT REPLICA_PORT
Exits 0 and prints "OK redis-py <version>" when every check holds; an assertion names the
first one that does not.
"""
import sys
import time

import redis


def check(host, master_port, replica_port):
    m = redis.Redis(host=host, port=master_port, decode_responses=True)
    r = redis.Redis(host=host, port=replica_port, decode_responses=True)
    role = r.role()
    assert role[0] == "slave" and role[2] == master_port, role
    # Writes acknowledged by the replica before WAIT returns, then read there.
    p = m.pipeline()
    p.sadd("20261122", "V0042", "V0007")
    p.expire("20261122", 604800)
    assert p.execute() == [2, True]
    assert m.wait(1, 5000) == 1
    assert r.smembers("20261122") == {"V0042", "V0007"}
    assert 604790 <= r.ttl("20261122") <= 604800
    role = m.role()
    assert role[0] == "master" and len(role[2]) == 1, role
    try:
        r.sadd("20261122", "V0001")
        raise AssertionError("READONLY expected")
    except redis.exceptions.ReadOnlyError:
        pass
    # A key the master expires is gone on the replica too (the master's DEL).
    m.sadd("short", "x")
    m.pexpire("short", 50)
    time.sleep(0.2)
    assert m.exists("short") == 0
    assert m.wait(1, 5000) == 1
    assert r.exists("short") == 0
    info = r.info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "up", info


if __name__ == "__main__":
    check(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    print(f"OK redis-py {redis.__version__}")
