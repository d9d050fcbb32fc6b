/* Cache lines shared between threads, under any allocator (run it with
 * LD_PRELOAD=lib.so, or without for the system's malloc). Each thread
 * records every 64-byte line covered by every block malloc gives it (from
 * the block's first byte to its last); at the end the probe counts the
 * distinct lines (lines_total) and those that at least two threads
 * received at some point (lines_shared).
 *
 *   independent [THREADS [OPS [WINDOW]]]        (2, 4000000, 10000)
 *     each thread churns its own blocks: a FIFO window of WINDOW live
 *     blocks, sizes 8..1024 B (Pareto, alpha 1: mostly small), each one
 *     filled with memset and the oldest freed when the window is full;
 *     no block ever changes threads, so a line received by two threads
 *     is the allocator's doing (0 for an allocator with per-thread heaps).
 *   producer-consumer [THREADS [OPS [WINDOW]]]  (2, 4000000, 10000)
 *     THREADS/2 pairs: the producer allocates OPS blocks (same sizes) and
 *     passes them in batches through a bounded, lock-protected ring (in
 *     mmap'ed memory) to the consumer, which checks and frees them and
 *     allocates one block of its own per 4 received, kept in a FIFO window
 *     of WINDOW/10 blocks. Here sharing is the program's own doing.
 *
 * One line on stdout, e.g.
 *   mode=independent threads=2 ops=4000000 window=10000 lines_total=N
 *   lines_shared=M shared_pct=P lines_per_thread=A,B mallocs=.. frees=..
 *   secs=.. malloc_from=/path/of/the/library/serving/malloc
 * (one line, key=value; malloc_from, last, is the file mapped where
 * malloc's code is, the proof that a preload is active). OPS counts
 * mallocs per thread (per producer).
 *
 * The bookkeeping (line sets, windows, the ring) lives in memory from
 * mmap, never from malloc, so the allocator under test sees only the
 * workload's calls. Every block's contents are checked before it is
 * freed; a damaged block aborts the probe with a message. All threads
 * wait at a barrier once their last malloc is done, so blocks freed at
 * the end (and caches flushed at thread exit) cannot reach another
 * thread's recorded mallocs.
 *
 *   cc -O2 -pthread linecount.c -o linecount
 *   LD_PRELOAD=.../libslabpool.so ./linecount independent */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { LINE_SHIFT = 6, MIN_SIZE = 8, MAX_SIZE = 1024, BATCH = 64, RING = 1024 };

static void die(const char *what) {
    /* stderr is unbuffered: no malloc on the way out. */
    fprintf(stderr, "linecount: %s\n", what);
    abort();
}

static void *map(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap failed");
    return p;
}

/* ---- a set of line numbers: open addressing, 0 = empty (line 0 holds
 * addresses 0..63, which malloc never returns) ---- */

struct set {
    uint64_t *keys;
    size_t cap; /* a power of two */
    size_t len;
};

static size_t slot_of(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static void set_init(struct set *s, size_t cap) {
    s->keys = map(cap * sizeof(uint64_t));
    s->cap = cap;
    s->len = 0;
}

static void set_free(struct set *s) {
    munmap(s->keys, s->cap * sizeof(uint64_t));
    s->keys = NULL;
}

/* Returns the slot of `key`, inserting it if absent (*added = 1). */
static size_t set_put(struct set *s, uint64_t key, int *added);

static void set_grow(struct set *s) {
    struct set bigger;
    set_init(&bigger, s->cap * 2);
    for (size_t i = 0; i < s->cap; i++)
        if (s->keys[i]) {
            int added;
            set_put(&bigger, s->keys[i], &added);
        }
    set_free(s);
    *s = bigger;
}

static size_t set_put(struct set *s, uint64_t key, int *added) {
    size_t mask = s->cap - 1, i = slot_of(key, s->cap);
    for (;;) {
        uint64_t k = s->keys[i];
        if (k == key) {
            *added = 0;
            return i;
        }
        if (k == 0)
            break;
        i = (i + 1) & mask;
    }
    if (2 * (s->len + 1) > s->cap) {
        set_grow(s);
        return set_put(s, key, added);
    }
    s->keys[i] = key;
    s->len++;
    *added = 1;
    return i;
}

/* Records the lines of [p, p + size). */
static void record(struct set *s, const void *p, size_t size) {
    uint64_t first = (uint64_t)(uintptr_t)p >> LINE_SHIFT;
    uint64_t last = ((uint64_t)(uintptr_t)p + size - 1) >> LINE_SHIFT;
    for (uint64_t line = first; line <= last; line++) {
        int added;
        set_put(s, line, &added);
    }
}

/* ---- workload ---- */

struct block {
    unsigned char *p;
    uint32_t size;
    uint32_t fill;
};

static uint64_t next(uint64_t *x) { /* splitmix64 */
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Pareto with alpha 1 from 8 B, cut at 1 KiB: P(size > s) = 8 / s, so
 * 87.5% of blocks are at most 64 B and 3% above 256 B; mean about 47 B. */
static uint32_t draw_size(uint64_t *x) {
    uint64_t u = (next(x) >> 11) + 1; /* 1 .. 2^53 */
    uint64_t s = ((uint64_t)MIN_SIZE << 53) / u;
    return s > MAX_SIZE ? MAX_SIZE : (uint32_t)s;
}

/* The thread in the high 5 bits, the block's sequence in the low 3 (so a
 * block handed out twice while live is caught too); never 0. */
static uint32_t fill_of(int thread, uint64_t seq) {
    return ((((unsigned)thread & 31) << 3) | (unsigned)(seq & 7)) ^ 0xA5;
}

struct thread {
    _Alignas(64) pthread_t id; /* each thread's record on its own lines */
    int index;
    struct set lines;
    uint64_t mallocs, frees;
    struct ring *in, *out; /* producer-consumer only */
};

static pthread_barrier_t start, finish;
static uint64_t ops, window;

static struct block take(struct thread *t, uint64_t *x, uint64_t seq) {
    struct block b;
    b.size = draw_size(x);
    b.fill = fill_of(t->index, seq);
    b.p = malloc(b.size);
    if (!b.p)
        die("malloc returned NULL");
    t->mallocs++;
    record(&t->lines, b.p, b.size);
    memset(b.p, (int)b.fill, b.size);
    return b;
}

static void check_and_free(struct thread *t, struct block b) {
    for (uint32_t i = 0; i < b.size; i++)
        if (b.p[i] != (unsigned char)b.fill) {
            fprintf(stderr,
                    "linecount: thread %d: block %p (%u B) byte %u is 0x%02x, "
                    "expected 0x%02x: contents damaged\n",
                    t->index, (void *)b.p, b.size, i, b.p[i], b.fill);
            abort();
        }
    free(b.p);
    t->frees++;
}

/* A FIFO of live blocks in mmap'ed memory. */
struct fifo {
    struct block *slots;
    uint64_t cap, head, len;
};

static void fifo_init(struct fifo *f, uint64_t cap) {
    f->slots = map(cap * sizeof(struct block));
    f->cap = cap;
    f->head = f->len = 0;
}

/* Adds `b`; the oldest block comes back once the window is full. */
static int fifo_push(struct fifo *f, struct block b, struct block *oldest) {
    if (f->len == f->cap) {
        *oldest = f->slots[f->head];
        f->slots[f->head] = b;
        f->head = (f->head + 1) % f->cap;
        return 1;
    }
    f->slots[(f->head + f->len++) % f->cap] = b;
    return 0;
}

static void fifo_drain(struct thread *t, struct fifo *f) {
    for (; f->len; f->len--, f->head = (f->head + 1) % f->cap)
        check_and_free(t, f->slots[f->head]);
    munmap(f->slots, f->cap * sizeof(struct block));
}

static void *independent(void *arg) {
    struct thread *t = arg;
    uint64_t x = 0x5EED0000ull + (uint64_t)t->index;
    struct fifo f;
    fifo_init(&f, window);
    pthread_barrier_wait(&start);
    for (uint64_t i = 0; i < ops; i++) {
        struct block old;
        if (fifo_push(&f, take(t, &x, i), &old))
            check_and_free(t, old);
    }
    pthread_barrier_wait(&finish);
    fifo_drain(t, &f);
    return NULL;
}

/* ---- producer-consumer: a bounded ring of blocks, mutex and condition
 * variables (neither allocates) ---- */

struct ring {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    uint64_t head, len;
    int closed;
    struct block slots[RING];
};

static void ring_push(struct ring *r, const struct block *b, int n) {
    pthread_mutex_lock(&r->lock);
    while (RING - r->len < (uint64_t)n)
        pthread_cond_wait(&r->not_full, &r->lock);
    for (int i = 0; i < n; i++)
        r->slots[(r->head + r->len++) % RING] = b[i];
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->lock);
}

static void ring_close(struct ring *r) {
    pthread_mutex_lock(&r->lock);
    r->closed = 1;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->lock);
}

/* Takes up to `max` blocks; 0 once the ring is closed and empty. */
static int ring_pop(struct ring *r, struct block *b, int max) {
    pthread_mutex_lock(&r->lock);
    while (r->len == 0 && !r->closed)
        pthread_cond_wait(&r->not_empty, &r->lock);
    int n = 0;
    for (; n < max && r->len; n++, r->len--, r->head = (r->head + 1) % RING)
        b[n] = r->slots[r->head];
    pthread_cond_signal(&r->not_full);
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void *producer(void *arg) {
    struct thread *t = arg;
    uint64_t x = 0x5EED0000ull + (uint64_t)t->index;
    struct block batch[BATCH];
    int n = 0;
    pthread_barrier_wait(&start);
    for (uint64_t i = 0; i < ops; i++) {
        batch[n++] = take(t, &x, i);
        if (n == BATCH) {
            ring_push(t->out, batch, n);
            n = 0;
        }
    }
    if (n)
        ring_push(t->out, batch, n);
    ring_close(t->out);
    pthread_barrier_wait(&finish);
    return NULL;
}

static void *consumer(void *arg) {
    struct thread *t = arg;
    uint64_t x = 0x5EED0000ull + (uint64_t)t->index, own = 0, received = 0;
    struct block batch[BATCH];
    struct fifo f;
    fifo_init(&f, window / 10 ? window / 10 : 1);
    pthread_barrier_wait(&start);
    for (int n; (n = ring_pop(t->in, batch, BATCH));) {
        for (int i = 0; i < n; i++) {
            /* The producer's fill byte travels with the block. */
            check_and_free(t, batch[i]);
            if (++received % 4 == 0) {
                struct block old;
                if (fifo_push(&f, take(t, &x, own++), &old))
                    check_and_free(t, old);
            }
        }
    }
    if (received != ops)
        die("the consumer did not receive every block");
    pthread_barrier_wait(&finish);
    fifo_drain(t, &f);
    return NULL;
}

/* ---- counting ---- */

struct counts {
    uint64_t total, shared;
};

/* Lines received by at least two threads: every thread's lines go into
 * one set, with a count of the threads that had each (each thread's own
 * set holds a line once). */
static struct counts count(struct thread *t, int n) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += t[i].lines.len;
    size_t cap = 1024;
    while (cap < 2 * sum + 2)
        cap *= 2;
    struct set all;
    set_init(&all, cap);
    uint32_t *owners = map(cap * sizeof(uint32_t));
    struct counts c = {0, 0};
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i].lines.cap; j++) {
            uint64_t line = t[i].lines.keys[j];
            if (!line)
                continue;
            int added;
            size_t k = set_put(&all, line, &added);
            if (++owners[k] == 2)
                c.shared++;
        }
    c.total = all.len;
    munmap(owners, cap * sizeof(uint32_t));
    set_free(&all);
    return c;
}

/* Writes the file mapped at malloc's code (from /proc/self/maps, read
 * into mmap'ed memory) to stdout; "?" if not found. */
static void print_malloc_from(void) {
    void *(*volatile fn)(size_t) = malloc;
    uintptr_t at = (uintptr_t)fn;
    enum { CAP = 4 << 20 };
    char *buf = map(CAP);
    size_t len = 0;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd >= 0) {
        ssize_t got;
        while (len < CAP - 1 && (got = read(fd, buf + len, CAP - 1 - len)) > 0)
            len += (size_t)got;
        close(fd);
    }
    buf[len] = 0;
    const char *found = "?";
    for (char *line = buf; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        /* start-end perms offset dev inode path */
        char *p;
        uintptr_t lo = strtoull(line, &p, 16);
        uintptr_t hi = *p == '-' ? strtoull(p + 1, &p, 16) : 0;
        if (lo <= at && at < hi) {
            for (int field = 0; field < 4 && p; field++)
                p = strchr(p + 1, ' ');
            if (p) {
                while (*p == ' ')
                    p++;
                if (*p)
                    found = p;
            }
            break;
        }
        if (!end)
            break;
        line = end + 1;
    }
    printf(" malloc_from=%s", found);
    munmap(buf, CAP);
}

static uint64_t arg(int argc, char **argv, int i, uint64_t dflt) {
    if (argc <= i)
        return dflt;
    char *end;
    unsigned long long v = strtoull(argv[i], &end, 10);
    if (*end || v == 0) {
        fprintf(stderr, "linecount: bad number %s\n", argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "independent";
    int pc = strcmp(mode, "producer-consumer") == 0;
    if (!pc && strcmp(mode, "independent") != 0) {
        fprintf(stderr,
                "usage: linecount [independent|producer-consumer] "
                "[THREADS [OPS [WINDOW]]]\n");
        return 2;
    }
    uint64_t n = arg(argc, argv, 2, 2);
    ops = arg(argc, argv, 3, 4000000);
    window = arg(argc, argv, 4, 10000);
    if (n > 1024 || (pc && n % 2)) {
        fprintf(stderr, "linecount: THREADS must be at most 1024%s\n",
                pc ? " and even" : "");
        return 2;
    }
    int threads = (int)n;

    struct thread *t = map(threads * sizeof *t);
    struct ring *rings = NULL;
    if (pc) {
        rings = map((size_t)(threads / 2) * sizeof *rings);
        for (int i = 0; i < threads / 2; i++) {
            pthread_mutex_init(&rings[i].lock, NULL);
            pthread_cond_init(&rings[i].not_full, NULL);
            pthread_cond_init(&rings[i].not_empty, NULL);
        }
    }
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&finish, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        t[i].index = i;
        set_init(&t[i].lines, (size_t)1 << 21);
    }
    for (int i = 0; i < threads; i++) {
        void *(*body)(void *) = independent;
        if (pc) {
            /* Even: a producer; odd: its consumer. */
            t[i].out = t[i].in = &rings[i / 2];
            body = i % 2 ? consumer : producer;
        }
        if (pthread_create(&t[i].id, NULL, body, &t[i]))
            die("pthread_create failed");
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_barrier_wait(&start);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i].id, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    uint64_t mallocs = 0, frees = 0;
    for (int i = 0; i < threads; i++) {
        mallocs += t[i].mallocs;
        frees += t[i].frees;
    }
    uint64_t expected = pc ? (uint64_t)(threads / 2) * (ops + ops / 4)
                           : (uint64_t)threads * ops;
    if (mallocs != expected || frees != mallocs)
        die("operation counts do not add up");
    struct counts c = count(t, threads);

    printf("mode=%s threads=%d ops=%llu window=%llu lines_total=%llu "
           "lines_shared=%llu shared_pct=%.3f lines_per_thread=",
           mode, threads, (unsigned long long)ops,
           (unsigned long long)window, (unsigned long long)c.total,
           (unsigned long long)c.shared,
           c.total ? 100.0 * (double)c.shared / (double)c.total : 0.0);
    for (int i = 0; i < threads; i++)
        printf("%s%zu", i ? "," : "", t[i].lines.len);
    printf(" mallocs=%llu frees=%llu secs=%.3f",
           (unsigned long long)mallocs, (unsigned long long)frees,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    print_malloc_from();
    printf("\n");
    return 0;
}
