/* The C twin of examples/pairs.rs, for callgrind and for the figures:
 * n malloc+free pairs of 32 bytes ("fixed32"), or n pairs of random sizes
 * (8..519 bytes) with 1,000 live blocks ("random").
 *
 *   cc -O2 pairs.c -o pairs
 *   LD_PRELOAD=.../libslabpool.so valgrind --tool=callgrind ./pairs fixed32 N
 *
 * Instructions per pair = (total(N) - total(0)) / N. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

static void fixed32(size_t n) {
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(32);
        sink = p;
        free(p);
    }
}

static void random_sizes(size_t n) {
    enum { LIVE = 1000 };
    static void *slots[LIVE];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n + LIVE; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t slot = (size_t)(x >> 8) % LIVE;
        size_t size = 8 + ((size_t)(x >> 24) & 511);
        free(slots[slot]);
        slots[slot] = i < n ? malloc(size) : NULL;
    }
    sink = slots;
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "fixed32";
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    if (strcmp(kind, "fixed32") == 0)
        fixed32(n);
    else if (strcmp(kind, "random") == 0)
        random_sizes(n);
    else {
        fprintf(stderr, "unknown loop %s\n", kind);
        return 2;
    }
    return 0;
}
