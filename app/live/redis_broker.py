"""The Redis broker (``--broker redis://HOST:PORT/DB``): rooms, votes and each worker's student
count in keys that expire with the room; events through pub/sub, which every worker listens to.
Any worker answers any request, and a restarted worker finds the rooms where it left them.

Faults a lecture meets (DESIGN.md §9, §7 "live recovery"):

- A worker killed: each worker writes that it is alive every `TICK_S`; a student count is
  trusted only from a worker seen within `WORKER_FRESH_S`, so the seats of a dead worker's
  students are free again within seconds and they reconnect to the other worker without 429.
- Redis crashing without persistence and coming back empty: every worker keeps the rooms it
  holds (the ones it stored, loaded or heard about on the pub/sub channel) and, each tick,
  re-asserts those Redis no longer has (``SET … NX``: a newer copy is never overwritten),
  with the student ids that joined them and the votes cast through it. A room a teacher ended
  leaves a tombstone that a re-assertion respects. While Redis is down, requests that must
  write answer 503 (`BrokerUnavailable`, with a retry), reads answer from the held copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from app.live.broker import ENDED, Broker, BrokerUnavailable, encode, ended_payload
from app.live.rooms import Room

log = logging.getLogger("cowlab.live")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


PREFIX = "cowlab:live:"
TICK_S = 1.0
# A worker's student counts are trusted while it has said it is alive this recently: three
# ticks, so a busy loop is not taken for a dead worker, and a killed worker's seats are free
# again well inside the 5 s a class has to follow again.
WORKER_FRESH_S = 3.0
# A worker not heard from for this long is forgotten (its counts stopped counting long ago).
WORKER_FORGET_S = 3600.0
# Connections to Redis a worker may hold at once. Streams hold none between events, but a
# class joining at once makes a burst of short commands (the room, its count, its poll) — one
# per stream being opened; past the pool, a command waits `POOL_WAIT_S` for a free connection
# rather than failing, so the pool is sized from the streams a worker serves at once.
POOL_WAIT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
COUNT_FRESH_S = 0.25
COMMAND_TIMEOUT_S = 5.0

# Store the room unless Redis has it already, or the teacher ended it (a tombstone).
_REASSERT = """
if redis.call('exists', KEYS[2]) == 1 then return 0 end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""
# Remember a joined student id, up to a bound per room.
_ADMIT = """
if redis.call('scard', KEYS[1]) < tonumber(ARGV[2]) then redis.call('sadd', KEYS[1], ARGV[1]) end
redis.call('expire', KEYS[1], ARGV[3])
return 1
"""


def pool_size(max_streams: int) -> int:
    """Redis connections for a worker serving ``max_streams`` streams (see `POOL_WAIT_S`)."""
    return max(16, min(256, max_streams // 8))


class RedisBroker(Broker):
    """Rooms in Redis, events through its pub/sub: for several workers or hosts."""

    def __init__(self, url: str, *, max_streams: int = 2048, **limits: Any) -> None:
        super().__init__(**limits)
        self.url = url
        self.max_streams = max_streams
        self.redis: Redis = self._client()
        self.worker = uuid.uuid4().hex[:12]
        self._tasks: list[asyncio.Task[None]] = []
        # What this worker would put back if Redis lost it (see the module's docstring).
        self.held: dict[str, Room] = {}
        self.held_joined: dict[str, set[str]] = {}
        self.held_votes: dict[tuple[str, int], dict[str, str]] = {}
        self._down_since: float | None = None
        self._counted: dict[str, tuple[float, int]] = {}
        # The value of `_epoch_key` this worker last saw: it changes when Redis comes back
        # empty, and then every worker puts back what it holds.
        self.epoch: bytes | None = None

    def _client(self) -> Redis:
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=pool_size(self.max_streams),
            timeout=POOL_WAIT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
        )
        return Redis(connection_pool=pool)

    # --- keys -----------------------------------------------------------------------------
    def _room_key(self, code: str) -> str:
        return f"{PREFIX}room:{code}"

    def _ended_key(self, code: str) -> str:
        return f"{PREFIX}ended:{code}"

    def _votes_key(self, code: str, poll_id: int) -> str:
        return f"{PREFIX}votes:{code}:{poll_id}"

    def _students_key(self, code: str) -> str:
        return f"{PREFIX}students:{code}"

    def _joined_key(self, code: str) -> str:
        return f"{PREFIX}joined:{code}"

    def _owner_key(self, owner: str) -> str:
        return f"{PREFIX}owner:{owner}"

    _rooms_key = f"{PREFIX}rooms"
    _epoch_key = f"{PREFIX}epoch"
    _workers_key = f"{PREFIX}workers"

    def _ttl(self, room: Room) -> int:
        return max(1, int(room.expires - self.clock()) + 1)

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Redis unreachable (crashed, restarting, the pool exhausted): `BrokerUnavailable`."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(str(exc)) from exc

    # --- life -----------------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        self.redis = self._client()  # a closed client does not reopen
        await self.redis.ping()  # a wrong --broker URL fails at start, not at the first class
        await self._tick()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._ticking())]

    async def close(self) -> None:
        await super().close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                for code in list(self.hub.rooms):
                    pipe.hdel(self._students_key(code), self.worker)
                pipe.hdel(self._workers_key, self.worker)
                await pipe.execute()
        await self.redis.aclose()

    async def _listen(self) -> None:
        """Deliver every room's events published by any worker to this worker's streams."""
        warned = False
        while True:
            client = Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT_S)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(f"{PREFIX}ev:*")
                if warned:
                    log.warning("live broker: listening to Redis again")
                    # Events published while this worker was not listening are lost: its
                    # streams get the rooms' state as it is now.
                    await self._resync()
                warned = False
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        self._heard(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarted or the network blinked: listen again
                if not warned:
                    log.warning("live broker: lost the Redis subscription, retrying", exc_info=True)
                warned = True
                await asyncio.sleep(TICK_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _resync(self) -> None:
        for code in list(self.hub.rooms):
            with contextlib.suppress(BrokerUnavailable):
                room = await self.load(code)
                if room is not None:
                    self.hub.deliver(code, "state", encode("state", await self.state(room)))

    def _heard(self, channel: bytes, data: bytes) -> None:
        code = channel.decode().rsplit(":", 1)[1]
        kind, _, payload = data.partition(b"\n")
        if kind == b"room":
            # Another worker stored the room: hold its newest copy (never delivered to pages).
            room = Room.from_json(payload)
            held = self.held.get(code)
            if held is None or code in self.hub.rooms or held.expires <= room.expires:
                self.held[code] = room
            return
        if kind.decode() == ENDED:
            self._forget(code)
        self.hub.deliver(code, kind.decode(), payload)

    def _forget(self, code: str) -> None:
        self.held.pop(code, None)
        self.held_joined.pop(code, None)
        for key in [key for key in self.held_votes if key[0] == code]:
            del self.held_votes[key]

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tick()
                if self._down_since is not None:
                    log.warning(
                        "live broker: Redis answers again after %.1f s",
                        self.clock() - self._down_since,
                    )
                self._down_since = None
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._down_since is None:
                    self._down_since = self.clock()
                    log.warning("live broker: Redis does not answer", exc_info=True)

    async def _tick(self) -> None:
        """Say this worker is alive, write its student counts, put back what Redis lost."""
        now = self.clock()
        for code in [code for code, room in self.held.items() if room.expires <= now]:
            self._forget(code)
        codes = list(self.held)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._epoch_key, uuid.uuid4().hex, nx=True)
            pipe.get(self._epoch_key)
            pipe.hset(self._workers_key, self.worker, str(now))
            for code in self.hub.rooms:
                self._write_presence(pipe, code, now)
            for code in codes:
                room = self.held[code]
                pipe.eval(
                    _REASSERT,
                    2,
                    self._room_key(code),
                    self._ended_key(code),
                    room.to_json(),
                    self._ttl(room),
                )
            results = await pipe.execute()
        epoch = results[1]
        lost = self.epoch is not None and epoch != self.epoch
        self.epoch = epoch
        restored = [
            code
            for code, put in zip(codes, results[-len(codes) :] if codes else [], strict=True)
            if put
        ]
        if restored or lost:
            log.warning("live broker: Redis lost its data; putting back rooms %s", ", ".join(codes))
            await self._restore(codes if lost else restored)
        if int(now) % 60 == 0:
            await self._forget_dead_workers(now)

    async def _restore(self, codes: list[str]) -> None:
        """Put back the room records' indexes, joined ids and votes of ``codes`` (each worker
        puts back its own: together they are the whole). A vote changed since is kept."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for code in codes:
                room = self.held[code]
                ttl = self._ttl(room)
                pipe.zadd(self._rooms_key, {code: room.expires})
                if room.owner:
                    pipe.zadd(self._owner_key(room.owner), {code: room.expires})
                    pipe.expire(self._owner_key(room.owner), ttl)
                joined = self.held_joined.get(code)
                if joined:
                    pipe.sadd(self._joined_key(code), *joined)
                    pipe.expire(self._joined_key(code), ttl)
                for (votes_code, poll_id), votes in self.held_votes.items():
                    if votes_code == code and votes:
                        for student, choice in votes.items():
                            pipe.hsetnx(self._votes_key(code, poll_id), student, choice)
                        pipe.expire(self._votes_key(code, poll_id), ttl)
            await pipe.execute()
        # Every worker puts back its own votes: the last one to do so announces the whole
        # tally, and pages that missed events meanwhile get the state as it is.
        for code in codes:
            with contextlib.suppress(BrokerUnavailable):
                await self.announce(self.held[code])

    async def _forget_dead_workers(self, now: float) -> None:
        seen = await self.redis.hgetall(self._workers_key)
        dead = [w for w, at in seen.items() if float(_text(at)) < now - WORKER_FORGET_S]
        if dead:
            await self.redis.hdel(self._workers_key, *dead)

    # --- the store --------------------------------------------------------------------------
    async def create(self, room: Room) -> bool:
        now = self.clock()
        # Like the server's rooms, an owner's rooms are a set scored by expiry: a room that
        # expired stops counting without anyone deleting it.
        owned = self._owner_key(room.owner)
        with self._reaching():
            if await self.redis.exists(self._room_key(room.code)):
                return False
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self._rooms_key, "-inf", now)
                pipe.zcard(self._rooms_key)
                pipe.zremrangebyscore(owned, "-inf", now)
                pipe.zcard(owned)
                _, count, _, held = await pipe.execute()
            refused = self.refusal(count, held if room.owner else 0)
            if refused is not None:
                raise refused
            created = await self.redis.set(
                self._room_key(room.code), room.to_json(), ex=self._ttl(room), nx=True
            )
            if not created:
                return False
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self._rooms_key, {room.code: room.expires})
                if room.owner:
                    pipe.zadd(owned, {room.code: room.expires})
                    pipe.expire(owned, self._ttl(room))
                await pipe.execute()
        self.held[room.code] = room
        return True

    async def load(self, code: str) -> Room | None:
        held = self.held.get(code)
        try:
            raw = await self.redis.get(self._room_key(code))
        except (RedisError, OSError) as exc:
            if held is not None and held.expires > self.clock():
                return held  # Redis is down: what this worker holds is the best answer
            raise BrokerUnavailable(str(exc)) from exc
        if raw is None:
            if held is None or held.expires <= self.clock():
                return None
            # Redis lost the room (restarted empty) and the tick has not put it back yet.
            with self._reaching():
                if not await self.redis.exists(self._ended_key(code)):
                    await self._tick()
                    return held
            return None
        room = Room.from_json(raw)
        if room.expires <= self.clock():
            return None
        self.held[code] = room
        return room

    async def save(self, room: Room) -> None:
        with self._reaching():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._room_key(room.code), room.to_json(), ex=self._ttl(room))
                pipe.zadd(self._rooms_key, {room.code: room.expires})
                if room.owner:
                    pipe.zadd(self._owner_key(room.owner), {room.code: room.expires})
                    pipe.expire(self._owner_key(room.owner), self._ttl(room))
                pipe.publish(f"{PREFIX}ev:{room.code}", b"room\n" + room.to_json().encode())
                await pipe.execute()
        self.held[room.code] = room

    async def end(self, code: str) -> None:
        room = self.held.get(code) or await self.load(code)
        with self._reaching():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._room_key(code), self._students_key(code), self._joined_key(code))
                if room is not None:
                    for poll in room.all_polls():
                        pipe.delete(self._votes_key(code, poll.id))
                    if room.owner:
                        pipe.zrem(self._owner_key(room.owner), code)
                pipe.zrem(self._rooms_key, code)
                pipe.set(self._ended_key(code), "1", ex=int(self.idle_seconds) + 1)
                pipe.publish(f"{PREFIX}ev:{code}", ENDED.encode() + b"\n" + ended_payload(code))
                await pipe.execute()
        self._forget(code)

    async def was_ended(self, code: str) -> bool:
        with self._reaching():
            return bool(await self.redis.exists(self._ended_key(code)))

    async def admit(self, code: str, student: str) -> None:
        room = self.held.get(code)
        ttl = self._ttl(room) if room is not None else int(self.idle_seconds) + 1
        with self._reaching():
            await self.redis.eval(_ADMIT, 1, self._joined_key(code), student, self.max_joined, ttl)
        joined = self.held_joined.setdefault(code, set())
        if len(joined) < self.max_joined:
            joined.add(student)

    async def admitted(self, code: str, student: str) -> bool:
        with self._reaching():
            return bool(await self.redis.sismember(self._joined_key(code), student))

    async def vote(self, room: Room, poll_id: int, student: str, choice: str) -> None:
        key = self._votes_key(room.code, poll_id)
        with self._reaching():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, student, choice)
                pipe.expire(key, self._ttl(room))
                await pipe.execute()
        self.held_votes.setdefault((room.code, poll_id), {})[student] = choice

    async def tally(self, code: str, poll_id: int) -> dict[str, int]:
        with self._reaching():
            votes = await self.redis.hvals(self._votes_key(code, poll_id))
        return dict(Counter(_text(vote) for vote in votes))

    async def students(self, code: str) -> int:
        # A class joining at once asks for the count once per stream: one answer serves
        # those that ask within `COUNT_FRESH_S` (a seat or two over the size, at worst).
        at, counted = self._counted.get(code, (-1.0, 0))
        if time.monotonic() - at < COUNT_FRESH_S:
            return counted
        with self._reaching():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._students_key(code))
                pipe.hgetall(self._workers_key)
                counts, workers = await pipe.execute()
        alive_after = self.clock() - WORKER_FRESH_S
        alive = {_text(w) for w, at in workers.items() if float(_text(at)) >= alive_after}
        total = 0
        for worker, value in counts.items():
            if _text(worker) in alive:
                total += int(_text(value).partition(" ")[0])
        self._counted[code] = (time.monotonic(), total)
        if len(self._counted) > 4 * self.max_rooms:
            self._counted.clear()
        return total

    async def publish(self, code: str, kind: str, payload: bytes) -> None:
        with self._reaching():
            await self.redis.publish(f"{PREFIX}ev:{code}", kind.encode() + b"\n" + payload)

    def _write_presence(self, pipe: Any, code: str, now: float) -> None:
        key = self._students_key(code)
        pipe.hset(key, self.worker, f"{self.hub.students(code)} {now}")
        pipe.expire(key, int(self.idle_seconds) + 1)

    async def presence_changed(self, code: str) -> None:
        with self._reaching():
            async with self.redis.pipeline(transaction=True) as pipe:
                self._write_presence(pipe, code, self.clock())
                await pipe.execute()
