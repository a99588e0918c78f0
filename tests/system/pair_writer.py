"""Writes uniquely numbered keys through an address and records what was
acknowledged; or reads them back. Run inside a test's namespace:

  pair_writer.py write HOST PORT SECONDS RATE OUT.json   (stops at SECONDS or at STOP file)
  pair_writer.py verify HOST PORT IN.json                 prints {"acked": N, "lost": [...]}

Bounded in time and count; one connection, reconnecting after errors
(bounded waits), every reply classified."""

import json
import os
import sys
import time

import redis


def write(host, port, seconds, rate, out):
    conn = None
    acked, errors, reconnects, samples = [], {}, 0, []
    last_ack, max_gap = None, 0.0
    stop_file = out + ".stop"
    end = time.monotonic() + seconds
    interval = 1.0 / rate
    i = 0
    next_at = time.monotonic()
    while time.monotonic() < end and not os.path.exists(stop_file) and i < 1_000_000:
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        i += 1
        try:
            if conn is None:
                conn = redis.Redis(host=host, port=port, socket_timeout=2, socket_connect_timeout=1)
                reconnects += 1
            if conn.set(f"w:{i}", i):
                acked.append(i)
                now = time.monotonic()
                if last_ack is not None:
                    max_gap = max(max_gap, now - last_ack)
                last_ack = now
        except redis.exceptions.RedisError as e:
            kind = type(e).__name__ + (": " + str(e).split()[0] if isinstance(e, redis.exceptions.ResponseError) else "")
            errors[kind] = errors.get(kind, 0) + 1
            if len(samples) < 5:
                wall = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
                samples.append(f"{time.monotonic() - (end - seconds):.3f}s ({wall} UTC) {type(e).__name__}: {e}")
            conn = None
            time.sleep(0.01)
    with open(out, "w") as f:
        json.dump({"acked": acked, "sent": i, "errors": errors, "samples": samples,
                   "reconnects": max(0, reconnects - 1),
                   "window_ms": round(max_gap * 1000)}, f)


def verify(host, port, path):
    with open(path) as f:
        acked = json.load(f)["acked"]
    conn = redis.Redis(host=host, port=port, socket_timeout=10)
    lost = []
    for start in range(0, len(acked), 1000):
        chunk = acked[start:start + 1000]
        values = conn.mget([f"w:{i}" for i in chunk])
        lost += [i for i, v in zip(chunk, values) if v is None or int(v) != i]
    print(json.dumps({"acked": len(acked), "lost": lost}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        verify(sys.argv[2], int(sys.argv[3]), sys.argv[4])
