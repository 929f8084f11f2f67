"""Run by test_ratelimit in separate processes: takes tokens from one Redis bucket, prints what it got.

python -m tests.gateway.ratelimit_worker REDIS_URL KEY START_AT COUNT RATE BURST QUEUE_DEPTH
"""

import asyncio
import json
import sys
import time

import redis.asyncio

from integrations.gateway.ratelimit import Bucket, RedisRateLimiter, acquire


async def main(url: str, key: str, start_at: float, count: int, rate: float, burst: int, depth: int) -> None:
    client = redis.asyncio.Redis.from_url(url)
    limiter = RedisRateLimiter(client)
    bucket = Bucket(key, rate, burst, depth)
    await asyncio.sleep(max(0.0, start_at - time.time()))  # both processes start together
    outcomes = await asyncio.gather(*(acquire(limiter, [bucket]) for _ in range(count)))
    print(json.dumps({"granted": sum(o is None for o in outcomes), "finished": time.time() - start_at}))
    await client.aclose()


if __name__ == "__main__":
    url, key, start_at, count, rate, burst, depth = sys.argv[1:]
    asyncio.run(main(url, key, float(start_at), int(count), float(rate), int(burst), int(depth)))
