"""Builds and frees millions of Python objects across threads; run with
PYTHONMALLOC=malloc so every object comes from the C allocator.

Four workers each build, in rounds, lists of tuples, strings, dicts, lists
and ints; index them in a dict; hand half of each round's records to the
next worker through a queue (so objects are freed by another thread than
the one that made them); check what they receive; and drop everything.
Prints one checksum per worker and their total, which depend only on the
scale argument (default 1), never on the allocator; exits 1 on a failed
check.
"""

import queue
import sys
import threading

WORKERS = 4


def record(i, seed):
    key = "k%d-%d" % (seed, i)
    return (i, key, {"id": i, "tags": [key[::-1], str(i * 7)]}, [i] * (i % 5), float(i) / 3)


def check(rec):
    i, key, meta, reps, third = rec
    return (
        meta["id"] == i
        and meta["tags"][0] == key[::-1]
        and meta["tags"][1] == str(i * 7)
        and reps == [i] * (i % 5)
        and third == float(i) / 3
    )


def worker(me, rounds, per_round, inbox, outbox, sums, errors):
    total = 0
    for r in range(rounds):
        seed = me * 1000 + r
        records = [record(i, seed) for i in range(per_round)]
        index = {rec[1]: rec for rec in records}
        total += sum(len(k) for k in index) + sum(len(rec[3]) for rec in records)
        # Hand every other record to the next worker, then take what the
        # previous one sent.
        outbox.put(records[::2])
        received = inbox.get()
        if not all(check(rec) for rec in received):
            errors.append("worker %d round %d: bad record" % (me, r))
        total += len(received) + sum(rec[0] for rec in received) % 1000003
        del records, index, received
        # Short-lived strings and bytes of many sizes.
        parts = ["%08x" % (i * 2654435761 % (1 << 32)) * (1 + i % 40) for i in range(per_round // 4)]
        blob = "".join(parts).encode()
        total += len(blob) % 1000003
        del parts, blob
    sums[me] = total


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rounds, per_round = 6, int(20000 * scale)
    queues = [queue.Queue() for _ in range(WORKERS)]
    sums = [0] * WORKERS
    errors = []
    threads = [
        threading.Thread(
            target=worker,
            args=(w, rounds, per_round, queues[w], queues[(w + 1) % WORKERS], sums, errors),
        )
        for w in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    for w, s in enumerate(sums):
        print("worker %d: %d" % (w, s))
    print("total: %d" % sum(sums))


if __name__ == "__main__":
    main()
