/* The cases of the hardening probe (see hardening.c) and their table:
 * each commits one kind of heap misuse, marks its own bad memory access
 * with bad_begin/bad_end, and reports the effect it sees (its rule, in the
 * table at the end). */
#define _GNU_SOURCE
#include "hardening.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- double frees ------------------------------------------------------ */

/* Rule for every double free: effect if later mallocs hand out a block
 * twice or one overlapping a live block. */

static void double_immediate(void) {
    char *p = xmalloc(48);
    free(p);
    free(p);
    take(48, 4096);
    check_overlaps();
}

static void double_in_between(void) {
    char *p = xmalloc(48), *q = xmalloc(48);
    free(p);
    free(q);
    free(p);
    take(48, 4096);
    check_overlaps();
}

/* The block leaves the thread cache (2,000 frees of its class after it)
 * and 100,000 operations on other sizes run before the second free; every
 * other block of its class stays live, so its slab stays in use. */
static char *many[4096];

static void double_delayed(void) {
    for (int i = 0; i < 4096; i++)
        many[i] = xmalloc(48);
    char *p = many[0];
    free(p);
    for (int i = 2; i < 4096; i += 2)
        free(many[i]);
    static char *ring[256];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t slot = x & 255;
        free(ring[slot]);
        ring[slot] = xmalloc(256 + (x >> 8) % 3840);
    }
    free(p);
    for (int i = 1; i < 4096; i += 2)
        track(many[i], 48);
    take(48, 4096);
    check_overlaps();
}

static void *free_in_thread(void *p) {
    free(p);
    return NULL;
}

/* Freed by the main thread, then again by another one (which exits). */
static void double_threads(void) {
    char *p = xmalloc(48);
    free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, p) || pthread_join(t, NULL))
        harness_error("pthread_create/join failed");
    take(48, 4096);
    check_overlaps();
}

/* Freed into one thread's cache, then again by another thread whose cache
 * is in use too; each thread then takes a block of the size (each cache's
 * head is the block freed, if both kept it). */
static char *cached_block, *taken_first, *taken_second;
static pthread_barrier_t cached_barrier;

static void warm_cache(void) {
    char *w[64];
    for (int i = 0; i < 64; i++)
        w[i] = xmalloc(48);
    for (int i = 0; i < 64; i++)
        free(w[i]);
}

static void *cached_first(void *unused) {
    (void)unused;
    warm_cache();
    cached_block = xmalloc(48);
    free(cached_block);
    pthread_barrier_wait(&cached_barrier);
    pthread_barrier_wait(&cached_barrier);
    taken_first = xmalloc(48);
    return NULL;
}

static void *cached_second(void *unused) {
    (void)unused;
    warm_cache();
    pthread_barrier_wait(&cached_barrier);
    free(cached_block);
    taken_second = xmalloc(48);
    pthread_barrier_wait(&cached_barrier);
    return NULL;
}

static void double_threads_cached(void) {
    pthread_t a, b;
    if (pthread_barrier_init(&cached_barrier, NULL, 2) ||
        pthread_create(&a, NULL, cached_first, NULL) ||
        pthread_create(&b, NULL, cached_second, NULL) || pthread_join(a, NULL) ||
        pthread_join(b, NULL))
        harness_error("pthread_barrier_init/create/join failed");
    track(taken_first, 48);
    track(taken_second, 48);
    take(48, 4096);
    check_overlaps();
}

/* free(p); q = malloc (often p again); free(p): if q == p, q's block is
 * freed while q is live. */
static void double_reused(void) {
    char *p = xmalloc(48);
    free(p);
    char *q = xmalloc(48);
    track(q, 48);
    free(p);
    take(48, 4096);
    check_overlaps();
}

static void double_medium(void) {
    char *p = xmalloc(64 << 10);
    free(p);
    free(p);
    take(64 << 10, 8);
    check_overlaps();
}

static void double_large(void) {
    char *p = xmalloc(4 << 20);
    free(p);
    free(p);
    take(4 << 20, 4);
    check_overlaps();
}

/* realloc of a freed block: effect if its result or later mallocs overlap
 * (it freed the block again, or handed it back while on a free list). */
static void realloc_freed(size_t to) {
    char *p = xmalloc(48);
    free(p);
    char *r = realloc(opaque(p), to);
    if (r)
        track(r, to);
    take(48, 4096);
    check_overlaps();
}

static void realloc_freed_grow(void) {
    realloc_freed(200);
}

static void realloc_freed_same(void) {
    realloc_freed(48);
}

/* ---- invalid frees ------------------------------------------------------ */

/* Rule for every invalid free: effect if a later malloc hands out memory
 * in the freed region or a block overlapping a live one. */

static void invalid_stack(void) {
    char frame[4096] __attribute__((aligned(64)));
    memset(frame, 0, sizeof frame);
    free(opaque(frame + 1024));
    probe_handout((uintptr_t)frame, sizeof frame);
    opaque(frame);
}

static char static_area[4096] __attribute__((aligned(64)));

static void invalid_static(void) {
    free(opaque(static_area + 1024));
    probe_handout((uintptr_t)static_area, sizeof static_area);
}

static void invalid_offset(size_t size, size_t offset) {
    char *p = xmalloc(size);
    track(p, size);
    free(opaque(p + offset));
    probe_handout((uintptr_t)p + offset, 48);
}

static void invalid_interior(void) {
    invalid_offset(64, 16);
}

static void invalid_unaligned(void) {
    invalid_offset(64, 1);
}

/* The free(malloc(48) + 240): a block of the slab never handed
 * out (in a fresh process). */
static void invalid_never_handed_out(void) {
    invalid_offset(48, 240);
}

static void invalid_past_end(void) {
    invalid_offset(48, 48);
}

static void invalid_far(void) {
    char *p = xmalloc(48);
    track(p, 48);
    char *bad = (char *)(((uintptr_t)p + (1ull << 36)) & ~(uintptr_t)63);
    free(opaque(bad));
    probe_handout((uintptr_t)bad, 48);
}

/* ---- free-list links overwritten ---------------------------------------- */

/* The reproducer: a, b, c = malloc(40); free(c); free(b); then
 * the program writes over the first word of the freed b (where a LIFO
 * free list keeps its link to c) and mallocs three times. Effect: a
 * malloc returns the address written (the static, the garbage), the
 * flipped link, a misaligned pointer, or a block overlapping a live one. */
static char link_target[256] __attribute__((aligned(64)));

static void overwrite_link(int how, int bit) {
    char *a = xmalloc(40), *b = xmalloc(40), *c = xmalloc(40);
    track(a, 40);
    free(c);
    free(b);
    uintptr_t aim[3];
    int aims = 0;
    volatile uintptr_t *link = opaque(b);
    bad_begin();
    if (how == 0) {
        *link = (uintptr_t)link_target;
        aim[aims++] = (uintptr_t)link_target;
    } else if (how == 1) {
        *link = (uintptr_t)0x4141414141414141u;
        aim[aims++] = (uintptr_t)0x4141414141414141u;
    } else {
        *link ^= (uintptr_t)1 << bit;
        aim[aims++] = (uintptr_t)c ^ ((uintptr_t)1 << bit);
        aim[aims++] = (uintptr_t)b ^ ((uintptr_t)1 << bit);
    }
    bad_end();
    for (int i = 0; i < 3; i++) {
        char *y = xmalloc(40);
        struct msg m = {.n = 0};
        for (int k = 0; k < aims; k++)
            if ((uintptr_t)y == aim[k]) {
                m_s(&m, "malloc returned ");
                m_x(&m, (uintptr_t)y);
                m_s(&m, how == 0   ? ", the static written into the link"
                        : how == 1 ? ", the garbage written into the link"
                                   : ", the flipped link");
                effect(&m);
            }
        if ((uintptr_t)y % 16 && !m.n) {
            m_s(&m, "malloc(40) returned the misaligned ");
            m_x(&m, (uintptr_t)y);
            effect(&m);
        }
        track(y, 40);
    }
    check_overlaps();
}

static void link_static(void) {
    overwrite_link(0, 0);
}

static void link_garbage(void) {
    overwrite_link(1, 0);
}

#define LINK_BIT(n)                                                                                \
    static void link_bit_##n(void) {                                                               \
        overwrite_link(2, n);                                                                      \
    }
LINK_BIT(3)
LINK_BIT(4)
LINK_BIT(6)
LINK_BIT(12)
LINK_BIT(17)
LINK_BIT(30)

/* ---- overflows and underflows into a neighbour ---------------------------- */

/* COUNT blocks of SIZE, each filled with its own byte; the program writes
 * AMOUNT bytes past the end of the lowest-addressed one (before the start
 * of the highest, for an underflow). Effect: another block's bytes
 * changed. Then every block is freed and as many are taken again, so
 * checks on free or malloc (canaries, headers) get their chance. */
static char *blocks[64];

static void overflow(size_t size, int count, size_t amount, int under) {
    for (int i = 0; i < count; i++) {
        blocks[i] = xmalloc(size);
        memset(blocks[i], 0x10 + i, size);
    }
    int victim = 0;
    for (int i = 1; i < count; i++)
        if (under ? blocks[i] > blocks[victim] : blocks[i] < blocks[victim])
            victim = i;
    char *v = blocks[victim];
    /* The byte next to the block must change: a one-byte canary holds the
     * fill byte in about one process in 128, and then nothing was damaged. */
    char *bad = under ? v - amount : v + size, *next = under ? v - 1 : v + size;
    bad_begin();
    memset(bad, *next == (char)0xEE ? 0xDD : 0xEE, amount);
    bad_end();
    for (int i = 0; i < count; i++) {
        if (i == victim)
            continue;
        for (size_t k = 0; k < size; k++)
            if ((unsigned char)blocks[i][k] != 0x10 + i) {
                struct msg m = {.n = 0};
                m_s(&m, "the neighbour ");
                m_x(&m, (uintptr_t)blocks[i]);
                m_s(&m, " changed at byte ");
                m_u(&m, k);
                effect(&m);
                goto checked;
            }
    }
checked:
    free(v);
    for (int i = 0; i < count; i++)
        if (i != victim)
            free(blocks[i]);
    for (int i = 0; i < count; i++)
        blocks[i] = xmalloc(size);
    for (int i = 0; i < count; i++)
        free(blocks[i]);
}

#define OVERFLOW(name, size, count, amount, under)                                                 \
    static void name(void) {                                                                       \
        overflow(size, count, amount, under);                                                      \
    }
OVERFLOW(over_1_small, 48, 64, 1, 0)
OVERFLOW(over_32_small, 48, 64, 32, 0)
OVERFLOW(over_1m_small, 48, 64, 1 << 20, 0)
OVERFLOW(over_1_medium, 64 << 10, 20, 1, 0)
OVERFLOW(over_32_medium, 64 << 10, 20, 32, 0)
OVERFLOW(over_1m_medium, 64 << 10, 20, 1 << 20, 0)
OVERFLOW(over_1_large, 4 << 20, 3, 1, 0)
OVERFLOW(over_32_large, 4 << 20, 3, 32, 0)
OVERFLOW(over_1m_large, 4 << 20, 3, 1 << 20, 0)
OVERFLOW(under_1_small, 48, 64, 1, 1)
OVERFLOW(under_32_small, 48, 64, 32, 1)
OVERFLOW(under_1m_small, 48, 64, 1 << 20, 1)
OVERFLOW(under_1_medium, 64 << 10, 20, 1, 1)
OVERFLOW(under_32_medium, 64 << 10, 20, 32, 1)
OVERFLOW(under_1m_medium, 64 << 10, 20, 1 << 20, 1)
OVERFLOW(under_1_large, 4 << 20, 3, 1, 1)
OVERFLOW(under_32_large, 4 << 20, 3, 32, 1)
OVERFLOW(under_1m_large, 4 << 20, 3, 1 << 20, 1)

/* ---- use after free ---------------------------------------------------- */

/* Effect: at least 8 of the 48 bytes read back still hold the freed
 * block's data. */
static void uaf_read(void) {
    char *p = xmalloc(48);
    memset(p, 0x5A, 48);
    free(p);
    char copy[48];
    volatile char *from = opaque(p);
    bad_begin();
    for (int i = 0; i < 48; i++)
        copy[i] = from[i];
    bad_end();
    int same = 0;
    for (int i = 0; i < 48; i++)
        same += copy[i] == 0x5A;
    if (same >= 8) {
        struct msg m = {.n = 0};
        m_s(&m, "read ");
        m_u(&m, (uint64_t)same);
        m_s(&m, " of 48 bytes of the freed block's data");
        effect(&m);
    }
}

/* Writes bytes 16..48 of a freed block (past the links and keys free
 * lists keep in its first 16). Effect: a later malloc hands out a block
 * holding the bytes written. */
static void uaf_write(void) {
    char *p = xmalloc(48);
    free(p);
    bad_begin();
    memset(opaque(p + 16), 0xA5, 32);
    bad_end();
    for (int i = 0; i < 4096; i++) {
        char *q = xmalloc(48);
        track(q, 48);
        int same = 0;
        for (int k = 16; k < 48; k++)
            same += (unsigned char)q[k] == 0xA5;
        if (same == 32) {
            struct msg m = {.n = 0};
            m_s(&m, "malloc handed out ");
            m_x(&m, (uintptr_t)q);
            m_s(&m, " holding the bytes written after free");
            effect(&m);
        }
    }
    check_overlaps();
    for (size_t i = 0; i < ntracked; i++)
        free((void *)tracked[i].at);
}

/* Zeroes a whole freed block (a program clearing a struct it freed).
 * Effect: later mallocs hand out a block twice or overlapping. */
static void uaf_zero(void) {
    char *p = xmalloc(48);
    memset(p, 0x5A, 48);
    free(p);
    bad_begin();
    memset(opaque(p), 0, 48);
    bad_end();
    take(48, 4096);
    check_overlaps();
    for (size_t i = 0; i < ntracked; i++)
        free((void *)tracked[i].at);
}

/* ---- the rest ----------------------------------------------------------- */

/* malloc(0) gives a block of no bytes: touching byte 0 is out of bounds.
 * Caught: a fault at the access (NULL from malloc(0) faults too), or a
 * report when the block is freed. Effect: the access completed. */
static void zero_read(void) {
    volatile char *p = opaque(malloc(0));
    bad_begin();
    char c = p[0];
    bad_end();
    (void)c;
    effect_s("read byte 0 of a malloc(0) block");
    free((void *)p);
}

static void zero_write(void) {
    volatile char *p = opaque(malloc(0));
    bad_begin();
    p[0] ^= 0x41; /* flipped: a canary's byte may already hold any constant */
    bad_end();
    free((void *)p);
    free(xmalloc(0));
    effect_s("wrote byte 0 of a malloc(0) block, unnoticed on free");
}

/* Effect: malloc of the same size right after free returns the same
 * block; otherwise reuse was delayed. */
static void immediate_reuse(void) {
    char *p = xmalloc(48);
    free(p);
    char *q = xmalloc(48);
    if (q == p)
        effect_s("malloc(48) returned the block freed just before");
    else
        outcome = "caught (delayed)";
    free(q);
}

/* malloc of 16 TiB, or 16 times the machine's RAM if that is more.
 * Caught: NULL with errno ENOMEM; effect: a pointer (or another errno). */
static void impossible_malloc(void) {
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t size = 1ull << 44;
    while (size < 16 * ram && size < (1ull << 62))
        size <<= 1;
    errno = 0;
    void *p = malloc((size_t)size);
    int e = errno;
    struct msg m = {.n = 0};
    m_s(&m, "malloc(");
    m_u(&m, size);
    if (p) {
        m_s(&m, ") returned ");
        m_x(&m, (uintptr_t)p);
        effect(&m);
        free(p);
    } else if (e != ENOMEM) {
        m_s(&m, ") returned NULL with errno ");
        m_u(&m, (uint64_t)e);
        effect(&m);
    } else {
        outcome = "caught (ENOMEM)";
    }
}

/* Copies a return instruction into a malloc block and calls it (no
 * mprotect). Caught: the call faults; effect: it returned. */
static void executable_heap(void) {
    unsigned char *p = (unsigned char *)xmalloc(64);
#if defined(__x86_64__)
    p[0] = 0xC3; /* ret */
#elif defined(__aarch64__)
    uint32_t ret = 0xd65f03c0; /* ret */
    memcpy(p, &ret, sizeof ret);
#else
#error "executable_heap: no return instruction for this architecture"
#endif
    __builtin___clear_cache((char *)p, (char *)p + 4);
    void (*fn)(void);
    memcpy(&fn, &p, sizeof fn);
    bad_begin();
    fn();
    bad_end();
    effect_s("code in a malloc block ran");
    free(p);
}

/* ---- the cases ---------------------------------------------------------- */

#define DOUBLE_RULE                                                                                \
    "the block is freed twice as named (realloc: after its free), then 4,096 blocks of its size "  \
    "(8 of 64 KiB, 4 of 4 MiB) are taken; missed: two live blocks are the same or overlap"
#define INVALID_RULE                                                                               \
    "free of the pointer named, then 256 blocks each of 16, 48, 64, 128 and 1024 B are taken; "   \
    "missed: one lies in the freed region, or two live blocks overlap"
#define LINK_RULE                                                                                  \
    "a, b, c = malloc(40); free(c); free(b); the first word of b overwritten as named; three "     \
    "malloc(40); missed: one returns the address written (or the flipped link), a misaligned "    \
    "pointer, or a block overlapping a live one"
#define OVER_RULE                                                                                  \
    "64 blocks of 48 B (20 of 64 KiB, 3 of 4 MiB), each filled with its own byte; the bytes "     \
    "past the end of the lowest (before the start of the highest) are written; all are freed "    \
    "and taken again; missed: another block's bytes changed"

const struct probe probes[] = {
    {"double free: immediate", DOUBLE_RULE, double_immediate},
    {"double free: another free in between", DOUBLE_RULE, double_in_between},
    {"double free: delayed (2,000 frees and 100,000 operations later)", DOUBLE_RULE,
     double_delayed},
    {"double free: across threads", DOUBLE_RULE, double_threads},
    {"double free: across threads, both caches in use", DOUBLE_RULE, double_threads_cached},
    {"double free: after the block was reused", DOUBLE_RULE, double_reused},
    {"double free: 64 KiB block", DOUBLE_RULE, double_medium},
    {"double free: 4 MiB block", DOUBLE_RULE, double_large},
    {"realloc of a freed pointer: grow", DOUBLE_RULE, realloc_freed_grow},
    {"realloc of a freed pointer: same size", DOUBLE_RULE, realloc_freed_same},
    {"invalid free: stack", INVALID_RULE, invalid_stack},
    {"invalid free: static", INVALID_RULE, invalid_static},
    {"invalid free: interior (malloc(64) + 16)", INVALID_RULE, invalid_interior},
    {"invalid free: unaligned (malloc(64) + 1)", INVALID_RULE, invalid_unaligned},
    {"invalid free: never handed out (malloc(48) + 240)", INVALID_RULE, invalid_never_handed_out},
    {"invalid free: just past a block (malloc(48) + 48)", INVALID_RULE, invalid_past_end},
    {"invalid free: far away (malloc(48) + 64 GiB)", INVALID_RULE, invalid_far},
    {"free-list link overwritten: address of a static", LINK_RULE, link_static},
    {"free-list link overwritten: garbage", LINK_RULE, link_garbage},
    {"free-list link overwritten: bit 3 flipped", LINK_RULE, link_bit_3},
    {"free-list link overwritten: bit 4 flipped", LINK_RULE, link_bit_4},
    {"free-list link overwritten: bit 6 flipped", LINK_RULE, link_bit_6},
    {"free-list link overwritten: bit 12 flipped", LINK_RULE, link_bit_12},
    {"free-list link overwritten: bit 17 flipped", LINK_RULE, link_bit_17},
    {"free-list link overwritten: bit 30 flipped", LINK_RULE, link_bit_30},
    {"overflow 1 B: 48 B blocks", OVER_RULE, over_1_small},
    {"overflow 32 B: 48 B blocks", OVER_RULE, over_32_small},
    {"overflow 1 MiB: 48 B blocks", OVER_RULE, over_1m_small},
    {"overflow 1 B: 64 KiB blocks", OVER_RULE, over_1_medium},
    {"overflow 32 B: 64 KiB blocks", OVER_RULE, over_32_medium},
    {"overflow 1 MiB: 64 KiB blocks", OVER_RULE, over_1m_medium},
    {"overflow 1 B: 4 MiB blocks", OVER_RULE, over_1_large},
    {"overflow 32 B: 4 MiB blocks", OVER_RULE, over_32_large},
    {"overflow 1 MiB: 4 MiB blocks", OVER_RULE, over_1m_large},
    {"underflow 1 B: 48 B blocks", OVER_RULE, under_1_small},
    {"underflow 32 B: 48 B blocks", OVER_RULE, under_32_small},
    {"underflow 1 MiB: 48 B blocks", OVER_RULE, under_1m_small},
    {"underflow 1 B: 64 KiB blocks", OVER_RULE, under_1_medium},
    {"underflow 32 B: 64 KiB blocks", OVER_RULE, under_32_medium},
    {"underflow 1 MiB: 64 KiB blocks", OVER_RULE, under_1m_medium},
    {"underflow 1 B: 4 MiB blocks", OVER_RULE, under_1_large},
    {"underflow 32 B: 4 MiB blocks", OVER_RULE, under_32_large},
    {"underflow 1 MiB: 4 MiB blocks", OVER_RULE, under_1m_large},
    {"use after free: read",
     "48 bytes of a freed 48 B block are read; missed: 8 or more still hold its data", uaf_read},
    {"use after free: write",
     "bytes 16 to 48 of a freed 48 B block are written, then 4,096 blocks taken; missed: one holds "
     "the bytes written",
     uaf_write},
    {"use after free: zeroing",
     "a freed 48 B block is zeroed, then 4,096 blocks taken; missed: two live blocks are the same "
     "or overlap",
     uaf_zero},
    {"malloc(0): read byte 0", "p = malloc(0); p[0] read; missed: the read completes", zero_read},
    {"malloc(0): write byte 0",
     "p = malloc(0); p[0] written; p freed; missed: the write completes and the free reports "
     "nothing",
     zero_write},
    {"immediate reuse of a freed block",
     "missed: free(p); malloc(48) returns p (caught (delayed) otherwise)", immediate_reuse},
    {"impossibly large malloc (16 TiB)",
     "caught (ENOMEM): NULL with errno ENOMEM; missed otherwise (16 times the RAM if more)",
     impossible_malloc},
    {"executable heap", "caught (fault): calling a ret copied into a block faults; missed: it returns",
     executable_heap},
};

const int nprobes = sizeof probes / sizeof *probes;
