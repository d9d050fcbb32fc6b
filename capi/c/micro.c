/* A C allocation micro program for the figures: THREADS threads, each
 * doing OPS random malloc/free operations over 4,096 live slots, sizes
 * skewed small (mostly 8..512 B; one in 16 up to 4 KiB, one in 256 up to
 * 64 KiB), writing the first and last byte of every block and checking
 * them before it is freed; one free in 16 goes through a shared box to the
 * next thread (a cross-thread free). Prints a checksum.
 *
 *   cc -O2 -pthread micro.c -o micro && LD_PRELOAD=... ./micro 2 50000000 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { SLOTS = 4096, BOX = 1024 };

struct box {
    pthread_mutex_t lock;
    void *items[BOX];
    int count;
};

static struct box *boxes;
static int threads;
static long ops;

static void *run(void *arg) {
    int id = (int)(intptr_t)arg;
    void **slot = calloc(SLOTS, sizeof *slot);
    size_t *len = calloc(SLOTS, sizeof *len);
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1), sum = 0;
    void *out[64];
    int nout = 0;
    for (long i = 0; i < ops; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned s = (unsigned)(x % SLOTS);
        if (slot[s]) {
            unsigned char *p = slot[s];
            if (p[0] != (unsigned char)len[s] || p[len[s] - 1] != (unsigned char)s) {
                fprintf(stderr, "block overwritten\n");
                exit(1);
            }
            sum += len[s];
            if ((x >> 60) == 0 && nout < 64) {
                out[nout++] = p;
            } else {
                free(p);
            }
            slot[s] = NULL;
            continue;
        }
        unsigned r = (unsigned)(x >> 32);
        size_t n = (r & 255) == 0 ? 2 + (r >> 8) % 65535
                   : (r & 15) == 0 ? 2 + (r >> 8) % 4095
                                   : 8 + (r >> 8) % 505;
        unsigned char *p = malloc(n);
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)s;
        slot[s] = p;
        len[s] = n;
        if (nout == 64) {
            struct box *b = &boxes[(id + 1) % threads];
            pthread_mutex_lock(&b->lock);
            for (int k = 0; k < nout; k++) {
                if (b->count < BOX)
                    b->items[b->count++] = out[k];
                else
                    free(out[k]);
            }
            pthread_mutex_unlock(&b->lock);
            nout = 0;
            b = &boxes[id];
            pthread_mutex_lock(&b->lock);
            for (int k = 0; k < b->count; k++)
                free(b->items[k]);
            b->count = 0;
            pthread_mutex_unlock(&b->lock);
        }
    }
    for (int k = 0; k < nout; k++)
        free(out[k]);
    for (int s = 0; s < SLOTS; s++)
        free(slot[s]);
    free(slot);
    free(len);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 2;
    ops = argc > 2 ? atol(argv[2]) : 50000000;
    boxes = calloc((size_t)threads, sizeof *boxes);
    pthread_t *t = malloc((size_t)threads * sizeof *t);
    for (int i = 0; i < threads; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
        pthread_create(&t[i], NULL, run, (void *)(intptr_t)i);
    }
    uint64_t sum = 0;
    for (int i = 0; i < threads; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    for (int i = 0; i < threads; i++)
        for (int k = 0; k < boxes[i].count; k++)
            free(boxes[i].items[k]);
    printf("micro: %d threads, %ld ops each, checksum %llu\n", threads, ops,
           (unsigned long long)sum);
    free(t);
    free(boxes);
    return 0;
}
