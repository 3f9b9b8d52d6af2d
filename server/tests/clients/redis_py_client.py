"""redis-py, unchanged, against the Speedlayer RESP service: what an application does.

Usage: redis_py_client.py HOST PORT PASSWORD
Exits 0 and prints "OK redis-py <version>" when every check holds; an assertion names
the first one that does not.
"""
import sys
import time

import redis


def check(host, port, password):
    # RESP2 (redis-py's default) with AUTH, and RESP3 (HELLO 3 AUTH default <pw>).
    r2 = redis.Redis(host=host, port=port, password=password, decode_responses=True)
    r3 = redis.Redis(host=host, port=port, password=password, protocol=3, decode_responses=True)
    for r in (r2, r3):
        assert r.ping() is True
    # Unauthenticated: redis-py raises its AuthenticationError subclass for NOAUTH.
    anon = redis.Redis(host=host, port=port, decode_responses=True)
    try:
        anon.scard("x")
        raise AssertionError("NOAUTH expected")
    except redis.exceptions.AuthenticationError:
        pass

    r2.flushdb()
    # The product's use: SADD a day's set, EXPIRE it for a week, read it back.
    assert r2.sadd("20261122", "V0042", "V0007") == 2
    assert r2.sadd("20261122", "V0042") == 0
    assert r2.expire("20261122", 604800) is True
    assert 604790 <= r2.ttl("20261122") <= 604800
    assert r2.smembers("20261122") == {"V0042", "V0007"}
    assert r3.smembers("20261122") == {"V0042", "V0007"}, "RESP3 set reply"
    assert r2.sismember("20261122", "V0042") == 1
    assert r2.smismember("20261122", ["V0042", "nope"]) == [1, 0]
    assert r2.scard("20261122") == 2
    assert r2.type("20261122") == "set"
    assert r2.exists("20261122", "missing") == 1

    # Pipelines (transaction=False: plain pipelining, replies in order).
    p = r2.pipeline(transaction=False)
    for i in range(1000):
        p.sadd("big", f"m{i}")
    p.scard("big")
    out = p.execute()
    assert out[:1000] == [1] * 1000 and out[1000] == 1000

    # pipeline() is transactional by default: MULTI ... EXEC, replies from EXEC's array.
    p = r2.pipeline()
    p.sadd("tx", "a", "b").scard("tx").expire("tx", 1000).ttl("tx")
    assert p.execute() == [2, 2, True, 1000]
    # A run-time error comes back in place (raise_on_error=False) and undoes nothing.
    p = r2.pipeline()
    p.sadd("tx", "c").expire("tx", "notanumber").scard("tx")
    out = p.execute(raise_on_error=False)
    assert out[0] == 1 and isinstance(out[1], redis.exceptions.ResponseError) and out[2] == 3, out
    # A command that fails to queue aborts the whole transaction (EXECABORT).
    p = r2.pipeline()
    p.sadd("tx", "never").execute_command("NOSUCH")
    try:
        p.execute()
        raise AssertionError("EXECABORT expected")
    except redis.exceptions.ResponseError as e:
        assert "unknown command" in str(e), e
    assert r2.sismember("tx", "never") == 0

    # transaction(func, *watches): WATCH, read, MULTI ... EXEC, retried when a watched key
    # changed. The first attempt is spoiled by another client's write.
    other = redis.Redis(host=host, port=port, password=password, decode_responses=True)
    r2.sadd("counter", "0")
    attempts = []

    def move_up(pipe):
        current = pipe.smembers("counter")
        attempts.append(current)
        if len(attempts) == 1:
            other.sadd("counter", "spoiler")
        pipe.multi()
        pipe.sadd("counter", str(len(current)))

    assert r2.transaction(move_up, "counter") == [1]
    assert len(attempts) == 2, attempts
    assert r2.smembers("counter") == {"0", "spoiler", "2"}
    # WatchError is what a spoiled EXEC raises without the retry loop.
    with r2.pipeline() as pipe:
        pipe.watch("counter")
        other.sadd("counter", "again")
        pipe.multi()
        pipe.scard("counter")
        try:
            pipe.execute()
            raise AssertionError("WatchError expected")
        except redis.exceptions.WatchError:
            pass
    # The same in RESP3 (EXEC's null is `_`).
    with r3.pipeline() as pipe:
        pipe.watch("counter")
        other.srem("counter", "again")
        pipe.multi()
        pipe.scard("counter")
        try:
            pipe.execute()
            raise AssertionError("WatchError expected (RESP3)")
        except redis.exceptions.WatchError:
            pass
    p = r3.pipeline()
    p.sadd("tx3", "x").smembers("tx3")
    assert p.execute() == [1, {"x"}]

    # Generic commands a sets-only server serves exactly.
    assert r2.copy("tx", "tx-copy") is True
    assert r2.copy("tx", "tx-copy") is False
    assert r2.copy("tx", "tx-copy", replace=True) is True
    assert r2.smembers("tx-copy") == {"a", "b", "c"} and r2.ttl("tx-copy") > 0
    assert r2.renamenx("tx-copy", "tx") is False
    assert r2.renamenx("tx-copy", "tx-renamed") is True
    assert r2.touch("tx", "tx-renamed", "missing") == 2
    assert r2.randomkey() is not None
    secs, micros = r2.time()
    assert abs(secs - time.time()) < 60 and 0 <= micros < 1_000_000

    # Cursor iteration helpers.
    assert set(r2.sscan_iter("big", count=100)) == {f"m{i}" for i in range(1000)}
    assert "big" in set(r2.scan_iter(match="b*", _type="set"))

    # Set algebra and *STORE.
    r2.sadd("a", "1", "2", "3")
    r2.sadd("b", "2", "3", "4")
    assert r2.sinter("a", "b") == {"2", "3"}
    assert r2.sunion("a", "b") == {"1", "2", "3", "4"}
    assert r2.sdiff("a", "b") == {"1"}
    assert r2.sintercard(2, ["a", "b"]) == 2
    assert r2.sunionstore("u", "a", "b") == 4
    assert r2.smove("a", "b", "1") is True
    popped = r2.spop("u", 2)
    assert len(popped) == 2 and r2.scard("u") == 2
    assert len(r2.srandmember("b", -10)) == 10

    # Errors as redis-py maps them.
    try:
        r2.execute_command("NOSUCH", "x")
        raise AssertionError("unknown command accepted")
    except redis.exceptions.ResponseError as e:
        assert "unknown command 'NOSUCH'" in str(e), e
    try:
        r2.execute_command("SADD", "a")
        raise AssertionError("wrong arity accepted")
    except redis.exceptions.ResponseError as e:
        assert "wrong number of arguments for 'sadd' command" in str(e), e

    # Expiry: PEXPIRE, PTTL, PERSIST, and a key that expires is gone.
    assert r2.pexpire("b", 100) is True
    assert 0 < r2.pttl("b") <= 100
    assert r2.persist("b") is True and r2.ttl("b") == -1
    assert r2.expire("a", 1) is True
    time.sleep(1.2)
    assert r2.exists("a") == 0 and r2.ttl("a") == -2

    # Connection commands clients use.
    assert r2.client_setname("speedlayer-test") is True
    assert r2.client_getname() == "speedlayer-test"
    assert isinstance(r2.client_id(), int)
    assert "redis_version" in r2.info("server")
    assert r2.dbsize() >= 1
    assert r2.echo("hi") == "hi"
    return redis.__version__


if __name__ == "__main__":
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    version = check(host, port, password)
    print(f"OK redis-py {version}")
