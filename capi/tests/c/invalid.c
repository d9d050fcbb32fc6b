/* Invalid frees, one per run: `invalid MODE`. Prints the bad pointer as
 * "pointer %p" on stdout (flushed), then makes the bad call, which must
 * abort with slabpool's message; reaching the end prints "not detected"
 * and exits 0. Nothing is allocated between the two frees of a double
 * free (stdout's buffer is allocated first): memory freed once may be
 * handed out again, and then the second free is a valid one. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>


static char static_buf[256];

static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void *announce(void *p) {
    printf("pointer %p\n", p);
    fflush(stdout);
    return opaque(p);
}

/* `double-other-cache`: a block freed into one thread's cache, then freed
 * again by another thread whose cache is in use too. */
static void *other_block;
static pthread_barrier_t other_barrier;

static void warm_cache(void) {
    void *w[100];
    for (int i = 0; i < 100; i++)
        w[i] = opaque(malloc(48));
    for (int i = 0; i < 100; i++)
        free(w[i]);
}

static void *first_free(void *unused) {
    (void)unused;
    warm_cache();
    other_block = announce(malloc(48));
    free(other_block);
    pthread_barrier_wait(&other_barrier);
    pthread_barrier_wait(&other_barrier);
    return NULL;
}

static void *second_free(void *unused) {
    (void)unused;
    warm_cache();
    pthread_barrier_wait(&other_barrier);
    free(opaque(other_block));
    pthread_barrier_wait(&other_barrier);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    printf("mode %s\n", mode);
    fflush(stdout);
    /* A live block, so the first segment stays mapped. */
    void *keep = malloc(100);
    memset(keep, 1, 100);
    if (strcmp(mode, "stack") == 0) {
        char local[64];
        memset(local, 0, sizeof local);
        free(announce(local));
    } else if (strcmp(mode, "static") == 0) {
        free(announce(static_buf));
    } else if (strcmp(mode, "mmap") == 0) {
        void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        free(announce(m));
    } else if (strcmp(mode, "glibc") == 0) {
        /* A block of another allocator: glibc's own malloc, looked up in
         * libc.so.6 itself (every global name of malloc, __libc_malloc
         * included, is the preloaded library's). */
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        void *(*glibc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
        if (!glibc_malloc) {
            fprintf(stderr, "glibc's malloc not found: %s\n", dlerror());
            return 2;
        }
        free(announce(glibc_malloc(64)));
    } else if (strcmp(mode, "interior") == 0) {
        char *p = malloc(64);
        free(announce(p + 16));
    } else if (strcmp(mode, "interior-large") == 0) {
        char *p = malloc(100000);
        free(announce(p + 4096));
    } else if (strcmp(mode, "interior-huge") == 0) {
        char *p = malloc(8 << 20);
        free(announce(p + 4096));
    } else if (strcmp(mode, "double-small") == 0) {
        void *p = announce(malloc(32));
        free(p);
        free(p);
    } else if (strcmp(mode, "double-large") == 0) {
        void *p = announce(malloc(100000));
        free(p);
        free(p);
    } else if (strcmp(mode, "double-huge") == 0) {
        void *p = announce(malloc(8 << 20));
        free(p);
        free(p);
    } else if (strcmp(mode, "double-between") == 0) {
        /* Freed twice with other frees in between. */
        void *p = announce(malloc(32)), *q = opaque(malloc(32)), *r = opaque(malloc(32));
        free(p);
        free(q);
        free(r);
        free(p);
    } else if (strcmp(mode, "double-central") == 0) {
        /* Freed twice after the thread cache handed the block on to the
         * central pool: thousands of frees of its class in between. */
        enum { N = 20000 };
        static void *many[N];
        void *p = announce(malloc(48));
        for (int i = 0; i < N; i++)
            many[i] = opaque(malloc(48));
        free(p);
        for (int i = 0; i < N; i++)
            free(many[i]);
        free(p);
    } else if (strcmp(mode, "double-other-cache") == 0) {
        pthread_t a, b;
        pthread_barrier_init(&other_barrier, NULL, 2);
        pthread_create(&a, NULL, first_free, NULL);
        pthread_create(&b, NULL, second_free, NULL);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
    } else if (strcmp(mode, "realloc-freed") == 0) {
        void *p = announce(malloc(32)), *q = opaque(malloc(32));
        free(p);
        free(q);
        void *r = realloc(p, 100);
        printf("%p\n", r);
    } else if (strcmp(mode, "never-allocated") == 0) {
        /* A block start in the slab past its bump pointer: the first
         * refill carves 4 KiB of blocks, the slab holds 64 KiB. */
        char *p = malloc(48);
        free(announce(p + 48 * 1000));
    } else if (strcmp(mode, "cached-never-allocated") == 0) {
        /* A block start carved into this thread's cache but never handed
         * out: it is free, so freeing it is a double free. */
        char *p = malloc(48);
        free(announce(p + 240));
    } else if (strncmp(mode, "link-", 5) == 0) {
        /* The reproducer: overwrite the free-list link of a freed
         * block, then allocate twice: the second would be the forged
         * address. Detected when the link is read (the first malloc). */
        char *a = malloc(40), *b = malloc(40), *c = malloc(40);
        opaque(a);
        free(c);
        free(b);
        uintptr_t *link = (uintptr_t *)announce(b);
        if (strcmp(mode, "link-static") == 0)
            *link = (uintptr_t)static_buf;
        else if (strcmp(mode, "link-garbage") == 0)
            *link = 0x4141414141414141u;
        else if (strcmp(mode, "link-bitflip-low") == 0)
            *link ^= 1;
        else if (strcmp(mode, "link-bitflip-high") == 0)
            *link ^= (uintptr_t)1 << 60;
        else if (strcmp(mode, "link-bitflip-30") == 0)
            *link ^= (uintptr_t)1 << 30;
        else
            return 2;
        void *x = opaque(malloc(40));
        void *y = opaque(malloc(40));
        printf("got %p %p\n", x, y);
    } else if (strcmp(mode, "realloc-interior") == 0) {
        char *p = malloc(64);
        void *r = realloc(announce(p + 8), 100);
        printf("%p\n", r);
    } else if (strcmp(mode, "usable-stack") == 0) {
        char local[16];
        memset(local, 0, sizeof local);
        printf("%zu\n", malloc_usable_size(announce(local)));
    } else {
        return 2;
    }
    printf("not detected\n");
    return 0;
}
