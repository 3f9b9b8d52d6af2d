#!/usr/bin/env python3
"""A write load through redis-py's Sentinel client, unchanged, across a failover.

    redis_py_sentinel_failover.py <sentinel ports, comma-separated> <before> <after> <seconds>

Connects with `Sentinel(...).master_for("mymaster")` and loops: `SADD flagged car<N>`, then
`WAIT 1 1000`. A write whose WAIT replied >= 1 is acknowledged as replicated and recorded.
After <before> such writes it prints `KILL` (the test then kills the master with -9); it
goes on through the failover (connection errors and READONLY replies are counted, the
client is not recreated) until the Sentinels name another master and <after> writes have
been acknowledged by it, or <seconds> pass. Last line: one JSON object with the
acknowledged members, the masters before and after, and the error counts.
"""
import json
import sys
import time

import redis
from redis.sentinel import Sentinel


def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    before, after = int(sys.argv[2]), int(sys.argv[3])
    deadline = time.time() + float(sys.argv[4])
    sentinel = Sentinel([("127.0.0.1", p) for p in ports], socket_timeout=1.0)
    first = sentinel.discover_master("mymaster")
    master = sentinel.master_for("mymaster", socket_timeout=1.0)
    acked, errors, unacked = [], {}, 0
    new_master, acked_on_new, i = None, 0, 0
    while time.time() < deadline:
        member = "car%06d" % i
        i += 1
        try:
            master.sadd("flagged", member)
            replicas = master.execute_command("WAIT", 1, 1000)
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as e:
            name = type(e).__name__
            errors[name] = errors.get(name, 0) + 1
            time.sleep(0.05)
            continue
        if replicas < 1:
            unacked += 1
            continue
        acked.append(member)
        if len(acked) == before:
            print("KILL", flush=True)
        if new_master is not None:
            acked_on_new += 1
            if acked_on_new >= after:
                break
        elif len(acked) > before:
            addr = sentinel.discover_master("mymaster")
            if addr != first:
                new_master = addr
    print(
        json.dumps(
            {
                "first": list(first),
                "new": list(new_master) if new_master else None,
                "acked": acked,
                "acked_on_new": acked_on_new,
                "unacked": unacked,
                "errors": errors,
                "attempts": i,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
