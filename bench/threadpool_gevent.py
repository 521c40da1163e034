# gevent's ThreadPool.apply round trip, for bench/run threadpool to set
# beside threadpool.roundtrip: an empty function on a pool of one thread,
# called from a greenlet, ns per call, best of 7 rounds. Run only where
# gevent is installed (Debian: python3-gevent); nothing depends on it.
import time

import gevent
from gevent.threadpool import ThreadPool

TRIPS = 20000


def empty():
    return None


def rounds(pool):
    best = None
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(TRIPS):
            pool.apply(empty)
        per = (time.perf_counter() - t0) / TRIPS * 1e9
        best = per if best is None or per < best else best
    return best


pool = ThreadPool(1)
best = gevent.spawn(rounds, pool).get()
print("bench: threadpool.gevent %.0f ns (gevent %s)" % (best, gevent.__version__))
