/* Every export of libslabpool.so and its edge cases, then the same calls
 * from several threads with cross-thread frees, all with content checks.
 * Run under LD_PRELOAD (or linked with -lslabpool); prints the library that
 * provides malloc and "api: N checks passed", or the first failure (exit 1).
 *
 * glibc semantics checked: malloc(0) and realloc(NULL, 0) return a unique
 * pointer; realloc(p, 0) frees and returns NULL; failures return NULL with
 * errno ENOMEM (calloc and reallocarray overflow too); posix_memalign
 * returns EINVAL for a bad alignment; aligned_alloc fails with EINVAL for a
 * non-power-of-two alignment; memalign rounds one up; free keeps errno. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef __GLIBC__
/* Another C library (musl) declares neither: libslabpool.so exports both,
 * and the preload resolves these weak references to them. */
extern void *pvalloc(size_t) __attribute__((weak));
extern int malloc_trim(size_t) __attribute__((weak));
#endif

static long checks;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* Opaque to the compiler, so it cannot fold or elide allocator calls. */
static size_t opaque(size_t n) {
    __asm__ volatile("" : "+r"(n));
    return n;
}

static void fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 131);
}

static int filled(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 131))
            return 0;
    return 1;
}

static int zeroed(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static size_t c_align(size_t size) { return size <= 8 ? 8 : 16; }

static const size_t sizes[] = {
    0,      1,       7,       8,       9,       15,      16,       17,
    24,     25,      40,      48,      56,      64,      65,       100,
    127,    128,     129,     255,     256,     257,     1000,     1024,
    1025,   4095,    4096,    4097,    10000,   32767,   32768,    32769,
    65536,  100000,  262144,  1000000, 2097151, 2097152, 2097153,  5000000,
    8388608, 20000000,
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void test_malloc_free(void) {
    void *ptrs[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        void *p = malloc(opaque(n));
        CHECK(p != NULL, "malloc(%zu)", n);
        CHECK((uintptr_t)p % c_align(n) == 0, "malloc(%zu) = %p misaligned", n, p);
        size_t usable = malloc_usable_size(p);
        CHECK(usable >= n, "usable %zu < %zu", usable, n);
        fill(p, usable, (unsigned)i);
        ptrs[i] = p;
    }
    for (size_t i = 0; i < NSIZES; i++)
        for (size_t j = 0; j < i; j++)
            CHECK(ptrs[i] != ptrs[j], "malloc returned %p twice", ptrs[i]);
    for (size_t i = 0; i < NSIZES; i++) {
        CHECK(filled(ptrs[i], malloc_usable_size(ptrs[i]), (unsigned)i),
              "block of %zu bytes overwritten", sizes[i]);
        free(ptrs[i]);
    }
    free(NULL);
    /* Every size up to 4 KiB, one at a time and many live. */
    static void *live[4097];
    for (size_t n = 0; n <= 4096; n++) {
        live[n] = malloc(opaque(n));
        CHECK(live[n] && (uintptr_t)live[n] % c_align(n) == 0, "malloc(%zu)", n);
        fill(live[n], n, (unsigned)n);
    }
    for (size_t n = 0; n <= 4096; n++) {
        CHECK(filled(live[n], n, (unsigned)n), "size %zu overwritten", n);
        free(live[n]);
    }
}

static void test_failures(void) {
    size_t huge_sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX,
                           (size_t)1 << 62};
    for (size_t i = 0; i < sizeof huge_sizes / sizeof huge_sizes[0]; i++) {
        size_t n = opaque(huge_sizes[i]);
        errno = 0;
        CHECK(malloc(n) == NULL && errno == ENOMEM, "malloc(%zu)", n);
        errno = 0;
        CHECK(calloc(1, n) == NULL && errno == ENOMEM, "calloc(1, %zu)", n);
        errno = 0;
        CHECK(aligned_alloc(64, n) == NULL && errno == ENOMEM, "aligned_alloc");
        errno = 0;
        CHECK(memalign(4096, n) == NULL && errno == ENOMEM, "memalign");
        errno = 0;
        CHECK(valloc(n) == NULL && errno == ENOMEM, "valloc");
        errno = 0;
        CHECK(pvalloc(n) == NULL && errno == ENOMEM, "pvalloc");
        void *out = (void *)1;
        CHECK(posix_memalign(&out, 64, n) == ENOMEM && out == (void *)1,
              "posix_memalign(%zu)", n);
    }
    errno = 0;
    CHECK(calloc(opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "overflow");
    errno = 0;
    CHECK(calloc(opaque((size_t)1 << 32), (size_t)1 << 32) == NULL && errno == ENOMEM,
          "calloc overflow 2^64");
}

static void test_calloc(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        if (n > 8388608)
            continue;
        /* Dirty a block of the same size first, so calloc must clear reused
         * memory. */
        void *d = malloc(opaque(n));
        CHECK(d != NULL, "malloc");
        memset(d, 0xAB, n);
        free(d);
        unsigned char *p = calloc(opaque(n), 1);
        CHECK(p != NULL && (uintptr_t)p % c_align(n) == 0, "calloc(%zu, 1)", n);
        CHECK(zeroed(p, n), "calloc(%zu, 1) not zeroed", n);
        free(p);
        p = calloc(3, opaque(n));
        CHECK(p != NULL && zeroed(p, 3 * n), "calloc(3, %zu)", n);
        free(p);
    }
    void *p = calloc(0, 5), *q = calloc(5, 0);
    CHECK(p != NULL && q != NULL && p != q, "calloc of 0 bytes");
    free(p);
    free(q);
}

static void test_realloc(void) {
    /* NULL pointer: malloc. */
    void *p = realloc(NULL, opaque(0));
    CHECK(p != NULL, "realloc(NULL, 0) must return a unique pointer");
    free(p);
    p = realloc(NULL, opaque(100));
    CHECK(p != NULL && (uintptr_t)p % 16 == 0, "realloc(NULL, 100)");
    /* Size 0: frees, returns NULL (glibc). */
    errno = 0;
    CHECK(realloc(p, opaque(0)) == NULL && errno == 0, "realloc(p, 0)");
    /* Grow and shrink across small, large and huge, keeping contents. */
    static const size_t steps[] = {1,      9,       24,      100,    1000,
                                   40000,  300000,  2097152, 3000000, 9000000,
                                   500000, 5000,    33,      8,      20000000,
                                   17};
    size_t have = 1;
    p = malloc(1);
    fill(p, 1, 7);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        void *q = realloc(p, opaque(n));
        CHECK(q != NULL && (uintptr_t)q % c_align(n) == 0, "realloc to %zu", n);
        size_t keep = have < n ? have : n;
        CHECK(filled(q, keep, 7), "realloc to %zu lost contents", n);
        CHECK(malloc_usable_size(q) >= n, "usable after realloc");
        fill(q, n, 7);
        have = n;
        p = q;
    }
    /* Failure leaves the block untouched. */
    errno = 0;
    CHECK(realloc(p, opaque(SIZE_MAX)) == NULL && errno == ENOMEM, "realloc fail");
    CHECK(filled(p, have, 7), "failed realloc changed the block");
    errno = 0;
    CHECK(realloc(p, opaque((size_t)PTRDIFF_MAX)) == NULL && errno == ENOMEM,
          "realloc PTRDIFF_MAX");
    CHECK(filled(p, have, 7), "failed realloc changed the block");
    free(p);
    /* In place while the size class fits. */
    p = malloc(100);
    uintptr_t before = (uintptr_t)p;
    p = realloc(p, 110);
    CHECK((uintptr_t)p == before, "realloc within the class moved");
    free(p);
}

static void test_reallocarray(void) {
    int *a = reallocarray(NULL, opaque(10), sizeof(int));
    CHECK(a != NULL, "reallocarray(NULL)");
    for (int i = 0; i < 10; i++)
        a[i] = i * i;
    int *b = reallocarray(a, opaque(100000), sizeof(int));
    CHECK(b != NULL, "reallocarray grow");
    for (int i = 0; i < 10; i++)
        CHECK(b[i] == i * i, "reallocarray lost contents");
    errno = 0;
    CHECK(reallocarray(b, opaque(SIZE_MAX / 2), 4) == NULL && errno == ENOMEM,
          "reallocarray overflow");
    CHECK(b[9] == 81, "failed reallocarray changed the block");
    CHECK(reallocarray(b, opaque(0), 4) == NULL, "reallocarray to 0 frees");
}

static void test_aligned(void) {
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 0, 8) == EINVAL && p == (void *)1, "align 0");
    CHECK(posix_memalign(&p, 3, 8) == EINVAL, "align 3");
    CHECK(posix_memalign(&p, 4, 8) == EINVAL, "align 4 < sizeof(void *)");
    CHECK(posix_memalign(&p, 24, 8) == EINVAL, "align 24");
    errno = 0;
    CHECK(aligned_alloc(opaque(24), 48) == NULL && errno == EINVAL, "aligned_alloc 24");
    errno = 0;
    CHECK(aligned_alloc(opaque(0), 48) == NULL && errno == EINVAL, "aligned_alloc 0");
    errno = 0;
    CHECK(memalign(opaque(SIZE_MAX), 48) == NULL && errno == EINVAL, "memalign 2^64-1");
    static const size_t asizes[] = {0, 1, 8, 24, 100, 4096, 5000, 40000, 3000000};
    for (size_t align = 8; align <= ((size_t)8 << 20); align *= 2) {
        for (size_t i = 0; i < sizeof asizes / sizeof asizes[0]; i++) {
            size_t n = asizes[i];
            void *q = NULL;
            CHECK(posix_memalign(&q, opaque(align), n) == 0 && q != NULL, "posix_memalign");
            CHECK((uintptr_t)q % align == 0 && (uintptr_t)q % c_align(n) == 0,
                  "posix_memalign(%zu, %zu) = %p", align, n, q);
            CHECK(malloc_usable_size(q) >= n, "usable");
            fill(q, n, 3);
            void *r = aligned_alloc(opaque(align), n);
            CHECK(r != NULL && (uintptr_t)r % align == 0, "aligned_alloc(%zu, %zu)", align, n);
            fill(r, n, 4);
            void *s = memalign(opaque(align), n);
            CHECK(s != NULL && (uintptr_t)s % align == 0, "memalign(%zu, %zu)", align, n);
            fill(s, n, 5);
            CHECK(filled(q, n, 3) && filled(r, n, 4) && filled(s, n, 5), "contents");
            free(q);
            free(r);
            free(s);
        }
    }
    /* Small alignments still give malloc's. */
    p = aligned_alloc(1, 24);
    CHECK(p != NULL && (uintptr_t)p % 16 == 0, "aligned_alloc(1, 24)");
    free(p);
    /* memalign rounds a non-power-of-two alignment up. */
    p = memalign(opaque(48), 100);
    CHECK(p != NULL && (uintptr_t)p % 64 == 0, "memalign(48) = %p", p);
    free(p);
    p = memalign(opaque(0), 10);
    CHECK(p != NULL && (uintptr_t)p % 16 == 0, "memalign(0)");
    free(p);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = valloc(opaque(10));
    CHECK(p != NULL && (uintptr_t)p % page == 0, "valloc");
    fill(p, 10, 1);
    free(p);
    p = pvalloc(opaque(0));
    CHECK(p != NULL && (uintptr_t)p % page == 0 && malloc_usable_size(p) >= page,
          "pvalloc(0)");
    free(p);
    p = pvalloc(opaque(page + 1));
    CHECK(p != NULL && (uintptr_t)p % page == 0 && malloc_usable_size(p) >= 2 * page,
          "pvalloc(page + 1)");
    memset(p, 1, 2 * page);
    free(p);
}

static void test_usable_trim_cfree(void) {
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
    /* The real size of the block: all of it is writable and kept. */
    for (size_t n = 1; n < 70000; n = n * 3 / 2 + 1) {
        unsigned char *p = malloc(opaque(n));
        size_t u = malloc_usable_size(p);
        CHECK(u >= n && u < n + n / 2 + 4096, "usable %zu for %zu", u, n);
        fill(p, u, 9);
        p = realloc(p, u);
        CHECK(filled(p, u, 9), "usable bytes not kept");
        free(p);
    }
    /* cfree: glibc no longer declares it; find it at run time. */
    void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    CHECK(cfree_fn != NULL, "cfree not found");
    void *p = malloc(77);
    cfree_fn(p);
    cfree_fn(NULL);
    /* malloc_trim: returns 0 or 1, and the heap works after it. */
    enum { N = 20000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(opaque(64 + (size_t)(i % 7) * 300));
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    int r = malloc_trim(0);
    CHECK(r == 0 || r == 1, "malloc_trim returned %d", r);
    p = malloc(1000);
    fill(p, 1000, 2);
    CHECK(filled(p, 1000, 2), "malloc after malloc_trim");
    free(p);
}

static void test_errno_kept(void) {
    size_t n[] = {16, 200, 5000, 100000, 3000000, 10000000};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        /* Enough blocks that some frees take slow paths. */
        enum { K = 300 };
        void *b[K];
        for (int k = 0; k < K; k++)
            b[k] = malloc(opaque(n[i]));
        for (int k = 0; k < K; k++) {
            errno = 1234;
            free(b[k]);
            CHECK(errno == 1234, "free of %zu bytes changed errno to %d", n[i], errno);
        }
    }
}

/* Threads: random malloc/calloc/realloc/memalign/free with pattern checks;
 * half of each thread's blocks are handed to the next thread to free. */
enum { THREADS = 4, SLOTS = 512, ROUNDS = 200000 };

struct handoff {
    pthread_mutex_t lock;
    void *items[4096];
    unsigned seeds[4096];
    size_t sizes[4096];
    int count;
};
static struct handoff boxes[THREADS];

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    void *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int s = (int)(x % SLOTS);
        size_t n = (x >> 20) % 64 == 0 ? (x >> 24) % 100000 : (x >> 24) % 600;
        if (slot[s]) {
            if (!filled(slot[s], len[s], seed[s])) {
                fprintf(stderr, "FAILED thread %d: block %p of %zu overwritten\n", id,
                        slot[s], len[s]);
                exit(1);
            }
            if ((x >> 40) % 3 == 0) {
                /* Hand over to the next thread. */
                struct handoff *h = &boxes[(id + 1) % THREADS];
                pthread_mutex_lock(&h->lock);
                if (h->count < 4096) {
                    h->items[h->count] = slot[s];
                    h->seeds[h->count] = seed[s];
                    h->sizes[h->count] = len[s];
                    h->count++;
                    slot[s] = NULL;
                }
                pthread_mutex_unlock(&h->lock);
            }
            if (slot[s]) {
                if ((x >> 44) % 4 == 0) {
                    void *q = realloc(slot[s], n + 1);
                    if (!q || !filled(q, len[s] < n + 1 ? len[s] : n + 1, seed[s])) {
                        fprintf(stderr, "FAILED thread %d: realloc\n", id);
                        exit(1);
                    }
                    slot[s] = q;
                    len[s] = n + 1;
                    fill(q, len[s], seed[s]);
                    continue;
                }
                free(slot[s]);
                slot[s] = NULL;
            }
        }
        seed[s] = (unsigned)(x >> 32);
        len[s] = n;
        switch ((x >> 50) % 4) {
        case 0:
            slot[s] = calloc(1, n);
            if (slot[s] && !zeroed(slot[s], n)) {
                fprintf(stderr, "FAILED thread %d: calloc not zeroed\n", id);
                exit(1);
            }
            break;
        case 1:
            slot[s] = memalign(64, n);
            if ((uintptr_t)slot[s] % 64) {
                fprintf(stderr, "FAILED thread %d: memalign\n", id);
                exit(1);
            }
            break;
        default:
            slot[s] = malloc(n);
        }
        if (!slot[s]) {
            fprintf(stderr, "FAILED thread %d: out of memory\n", id);
            exit(1);
        }
        fill(slot[s], n, seed[s]);
        /* Free what others handed over. */
        if (round % 64 == 0) {
            struct handoff *h = &boxes[id];
            pthread_mutex_lock(&h->lock);
            for (int i = 0; i < h->count; i++) {
                if (!filled(h->items[i], h->sizes[i], h->seeds[i])) {
                    fprintf(stderr, "FAILED thread %d: handed-over block overwritten\n", id);
                    exit(1);
                }
                free(h->items[i]);
            }
            h->count = 0;
            pthread_mutex_unlock(&h->lock);
        }
    }
    for (int s = 0; s < SLOTS; s++)
        free(slot[s]);
    return NULL;
}

static void *worker_short(void *arg) {
    (void)arg;
    void *b[100];
    for (int i = 0; i < 100; i++) {
        b[i] = malloc((size_t)(16 + i * 40));
        fill(b[i], (size_t)(16 + i * 40), (unsigned)i);
    }
    for (int i = 0; i < 100; i += 2)
        free(b[i]);
    for (int i = 1; i < 100; i += 2) {
        if (!filled(b[i], (size_t)(16 + i * 40), (unsigned)i)) {
            fprintf(stderr, "FAILED short thread: overwritten\n");
            exit(1);
        }
        free(b[i]);
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "spawn");
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "join");
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < boxes[i].count; k++)
            free(boxes[i].items[k]);
        boxes[i].count = 0;
    }
    /* Many short threads: each caches blocks and exits (the pthread key
     * destructor flushes its cache). */
    for (int round = 0; round < 200; round++) {
        pthread_t s;
        CHECK(pthread_create(&s, NULL, worker_short, NULL) == 0, "spawn short");
        CHECK(pthread_join(s, NULL) == 0, "join short");
    }
}

/* The allocator's other names: glibc's __libc_* family and C23's sized
 * frees, found with dlsym (musl has no __libc_* names, glibc 2.36 no sized
 * frees: a name that is not there is skipped). Each must be served by the
 * object that serves malloc, and blocks must pass freely between the two
 * sets of names. */
static const char *object_of(void *f) {
    Dl_info info;
    return f && dladdr(f, &info) ? info.dli_fname : NULL;
}

/* Checks that `name`, if the process has it, is served by the object that
 * serves malloc; returns whether it has it. */
static int served_with_malloc(const char *name) {
    const char *home = object_of(dlsym(RTLD_DEFAULT, "malloc"));
    void *f = dlsym(RTLD_DEFAULT, name);
    const char *where = object_of(f);
    CHECK(!f || (where && home && strcmp(where, home) == 0), "%s served by %s, malloc by %s", name,
          where ? where : "?", home ? home : "?");
    return f != NULL;
}

static void test_other_names(void) {
    static const char *const names[] = {
        "__libc_malloc", "__libc_free",    "__libc_calloc",   "__libc_realloc",
        "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "free_sized",
        "free_aligned_sized",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        served_with_malloc(names[i]);
    void *(*libc_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
    void (*libc_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
    void *(*libc_calloc)(size_t, size_t) =
        (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
    void *(*libc_realloc)(void *, size_t) =
        (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
    void *(*libc_memalign)(size_t, size_t) =
        (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
    void *(*libc_valloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_valloc");
    void *(*libc_pvalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_pvalloc");
    if (libc_malloc && libc_free && libc_calloc && libc_realloc && libc_memalign &&
        libc_valloc && libc_pvalloc) {
        for (size_t i = 0; i < NSIZES; i++) {
            size_t n = sizes[i];
            /* __libc_malloc's block freed by free, and malloc's by __libc_free. */
            char *p = libc_malloc(n);
            CHECK(p && malloc_usable_size(p) >= n, "__libc_malloc(%zu)", n);
            fill(p, n, 3);
            p = libc_realloc(p, n * 2 + 1);
            CHECK(p && filled(p, n, 3), "__libc_realloc to %zu kept the contents", n * 2 + 1);
            free(p);
            char *q = malloc(n);
            CHECK(q != NULL, "malloc(%zu)", n);
            libc_free(q);
            q = libc_calloc(n, 1);
            CHECK(q && zeroed(q, n), "__libc_calloc(%zu, 1)", n);
            free(q);
        }
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        void *a = libc_memalign(256, 100);
        CHECK(a && (uintptr_t)a % 256 == 0, "__libc_memalign(256, 100)");
        free(a);
        a = libc_valloc(100);
        CHECK(a && (uintptr_t)a % page == 0, "__libc_valloc(100)");
        libc_free(a);
        a = libc_pvalloc(100);
        CHECK(a && (uintptr_t)a % page == 0 && malloc_usable_size(a) >= page, "__libc_pvalloc");
        libc_free(a);
    }
    void (*sized)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*aligned_sized)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (sized && aligned_sized) {
        for (size_t i = 0; i < NSIZES; i++) {
            size_t n = sizes[i];
            sized(malloc(n), n);
            aligned_sized(aligned_alloc(64, (n + 63) & ~(size_t)63), 64, (n + 63) & ~(size_t)63);
        }
        sized(NULL, 0);
        aligned_sized(NULL, 64, 0);
        /* The blocks went back: the same sizes are served again. */
        for (size_t i = 0; i < NSIZES; i++) {
            void *p = malloc(sizes[i]);
            CHECK(p != NULL, "malloc(%zu) after sized frees", sizes[i]);
            free(p);
        }
    }
}

/* mallinfo2 and mallinfo (glibc): the allocator's own figures, so an
 * 8 MiB block shows in uordblks, inside arena, and goes when freed. */
static void test_mallinfo(void) {
#ifdef __GLIBC__
    CHECK(served_with_malloc("mallinfo2") && served_with_malloc("mallinfo"),
          "mallinfo2 and mallinfo");
    struct mallinfo2 (*info2)(void) = (struct mallinfo2 (*)(void))dlsym(RTLD_DEFAULT, "mallinfo2");
    struct mallinfo (*info)(void) = (struct mallinfo (*)(void))dlsym(RTLD_DEFAULT, "mallinfo");
    size_t big = 8 << 20;
    struct mallinfo2 before = info2();
    char *p = malloc(big);
    CHECK(p != NULL, "malloc(8 MiB)");
    struct mallinfo2 during = info2();
    struct mallinfo old = info();
    CHECK(during.uordblks >= before.uordblks + big, "uordblks %zu -> %zu for an 8 MiB block",
          before.uordblks, during.uordblks);
    CHECK(during.arena >= during.uordblks && during.fordblks == during.arena - during.uordblks,
          "arena %zu, uordblks %zu, fordblks %zu", during.arena, during.uordblks,
          during.fordblks);
    CHECK(during.hblks >= 1, "hblks %zu with an 8 MiB block live", during.hblks);
    CHECK(old.uordblks > 0 && (size_t)old.uordblks >= big, "mallinfo uordblks %d",
          old.uordblks);
    free(p);
    struct mallinfo2 after = info2();
    CHECK(after.uordblks + big <= during.uordblks, "uordblks %zu -> %zu after the free",
          during.uordblks, after.uordblks);
#endif
}

int main(void) {
    const char *home = object_of(dlsym(RTLD_DEFAULT, "malloc"));
    CHECK(home != NULL, "dladdr(malloc)");
    printf("malloc from: %s\n", home);
    test_malloc_free();
    test_failures();
    test_calloc();
    test_realloc();
    test_reallocarray();
    test_aligned();
    test_usable_trim_cfree();
    test_other_names();
    test_mallinfo();
    test_errno_kept();
    test_threads();
    /* malloc_stats prints the allocator's statistics on stderr (the test
     * checks they are slabpool's). */
    void (*stats)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "malloc_stats");
    CHECK(stats != NULL, "malloc_stats");
    if (stats)
        stats();
    printf("api: %ld checks passed\n", checks);
    return 0;
}
