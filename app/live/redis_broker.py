"""The Redis broker (``--broker redis://HOST:PORT/DB``): rooms, votes and each worker's student
count in keys that expire with the room; events through pub/sub, which every worker listens to.
Any worker answers any request, and a restarted worker finds the rooms where it left them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from typing import Any

from redis.asyncio import Redis

from app.live.broker import Broker, ClientRoomsFull, RoomsFull
from app.live.rooms import Room

log = logging.getLogger("cowlab.live")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


PREFIX = "cowlab:live:"
# A worker's student count is trusted this long after it last wrote it: a worker that died
# without saying goodbye stops counting after this, and a live one rewrites it every
# heartbeat (at most every 15 s).
PRESENCE_FRESH_S = 40.0
PRESENCE_REFRESH_S = 10.0


class RedisBroker(Broker):
    """Rooms in Redis, events through its pub/sub: for several workers or hosts."""

    def __init__(self, url: str, **limits: Any) -> None:
        super().__init__(**limits)
        self.url = url
        self.redis: Redis = Redis.from_url(url)
        self.worker = uuid.uuid4().hex[:12]
        self._listening: asyncio.Task[None] | None = None
        self._presence_written: dict[str, float] = {}

    def _room_key(self, code: str) -> str:
        return f"{PREFIX}room:{code}"

    def _votes_key(self, code: str, poll_id: int) -> str:
        return f"{PREFIX}votes:{code}:{poll_id}"

    def _students_key(self, code: str) -> str:
        return f"{PREFIX}students:{code}"

    def _owner_key(self, owner: str) -> str:
        return f"{PREFIX}owner:{owner}"

    def _ttl(self, room: Room) -> int:
        return max(1, int(room.expires - self.clock()) + 1)

    async def start(self) -> None:
        await super().start()
        self.redis = Redis.from_url(self.url)  # a closed client does not reopen
        await self.redis.ping()  # a wrong --broker URL fails at start, not at the first class
        self._listening = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        await super().close()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        for code in list(self.hub.rooms):
            with contextlib.suppress(Exception):
                await self.redis.hdel(self._students_key(code), self.worker)
        await self.redis.aclose()

    async def _listen(self) -> None:
        """Deliver every room's events published by any worker to this worker's streams."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(f"{PREFIX}ev:*")
                async for message in pubsub.listen():
                    if message["type"] != "pmessage":
                        continue
                    code = message["channel"].decode().rsplit(":", 1)[1]
                    kind, _, payload = message["data"].partition(b"\n")
                    self.hub.deliver(code, kind.decode(), payload)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarted or the network blinked: listen again
                log.warning("live broker: lost the Redis subscription, retrying", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def create(self, room: Room) -> bool:
        if await self.redis.exists(self._room_key(room.code)):
            return False
        now = self.clock()
        rooms = f"{PREFIX}rooms"
        # Like the server's rooms, an owner's rooms are a set scored by expiry: a room that
        # expired stops counting without anyone deleting it.
        owned = self._owner_key(room.owner)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(rooms, "-inf", now)
            pipe.zcard(rooms)
            pipe.zremrangebyscore(owned, "-inf", now)
            pipe.zcard(owned)
            _, count, _, held = await pipe.execute()
        if count >= self.max_rooms:
            raise RoomsFull
        if room.owner and held >= self.max_rooms_per_client:
            raise ClientRoomsFull
        created = await self.redis.set(
            self._room_key(room.code), room.to_json(), ex=self._ttl(room), nx=True
        )
        if not created:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(rooms, {room.code: room.expires})
            if room.owner:
                pipe.zadd(owned, {room.code: room.expires})
                pipe.expire(owned, self._ttl(room))
            await pipe.execute()
        return True

    async def load(self, code: str) -> Room | None:
        raw = await self.redis.get(self._room_key(code))
        if raw is None:
            return None
        room = Room.from_json(raw)
        return room if room.expires > self.clock() else None

    async def save(self, room: Room) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._room_key(room.code), room.to_json(), ex=self._ttl(room))
            pipe.zadd(f"{PREFIX}rooms", {room.code: room.expires})
            if room.owner:
                pipe.zadd(self._owner_key(room.owner), {room.code: room.expires})
                pipe.expire(self._owner_key(room.owner), self._ttl(room))
            await pipe.execute()

    async def vote(self, room: Room, poll_id: int, student: str, choice: str) -> None:
        key = self._votes_key(room.code, poll_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, student, choice)
            pipe.expire(key, self._ttl(room))
            await pipe.execute()

    async def tally(self, code: str, poll_id: int) -> dict[str, int]:
        votes = await self.redis.hvals(self._votes_key(code, poll_id))
        return dict(Counter(_text(vote) for vote in votes))

    async def students(self, code: str) -> int:
        fresh_after = self.clock() - PRESENCE_FRESH_S
        total = 0
        for value in (await self.redis.hgetall(self._students_key(code))).values():
            count, _, written = _text(value).partition(" ")
            if float(written) >= fresh_after:
                total += int(count)
        return total

    async def publish(self, code: str, kind: str, payload: bytes) -> None:
        await self.redis.publish(f"{PREFIX}ev:{code}", kind.encode() + b"\n" + payload)

    async def presence_changed(self, code: str) -> None:
        now = self.clock()
        key = self._students_key(code)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, self.worker, f"{self.hub.students(code)} {now}")
            pipe.expire(key, int(self.idle_seconds) + 1)
            await pipe.execute()
        self._presence_written[code] = now
        if code not in self.hub.rooms:
            self._presence_written.pop(code, None)

    async def heartbeat(self, code: str) -> None:
        if self.clock() - self._presence_written.get(code, 0.0) > PRESENCE_REFRESH_S:
            await self.presence_changed(code)
