/* fork while other threads allocate: three threads churn through malloc,
 * realloc and free (small bursts larger than a thread cache, and large
 * blocks, so the central and arena locks are busy); the main thread forks
 * 50 times. Each child allocates (small, large and huge), checks, and
 * exits; a child that does not finish within 10 s is killed and the
 * program fails ("deadlock"). Prints "fork: 50 children ok". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    enum { BURST = 4096 };
    static const size_t sizes[] = {16, 48, 128, 512, 2048, 40000};
    void **burst = malloc(BURST * sizeof *burst);
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        for (unsigned k = 0; k < BURST; k++) {
            size_t n = sizes[(i + k + id) % 6];
            burst[k] = malloc(n);
            memset(burst[k], (int)(k & 0xff), n);
        }
        for (unsigned k = 0; k < BURST; k++) {
            if (((unsigned char *)burst[k])[0] != (k & 0xff)) {
                fprintf(stderr, "FAILED: block overwritten in thread %u\n", id);
                exit(1);
            }
            if (k % 5 == 0)
                burst[k] = realloc(burst[k], 3000);
            free(burst[k]);
        }
    }
    free(burst);
    return NULL;
}

static int child_work(void) {
    int ok = 1;
    for (size_t n = 0; n < 2000; n++) {
        size_t size = 1 + n * 37 % 70000;
        unsigned char *p = malloc(size);
        if (!p)
            return 3;
        memset(p, (int)(n % 251), size);
        ok &= p[size - 1] == n % 251;
        free(p);
    }
    unsigned char *big = malloc(5 << 20);
    if (!big)
        return 3;
    memset(big, 7, 5 << 20);
    ok &= big[(5 << 20) - 1] == 7;
    free(big);
    return ok ? 0 : 4;
}

int main(void) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i);
    int rounds = 50;
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(child_work());
        struct timespec start, now, nap = {0, 2000000};
        clock_gettime(CLOCK_MONOTONIC, &start);
        int status;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 10) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fprintf(stderr, "FAILED: child of round %d still running after 10 s: "
                                "deadlocked after fork\n", round);
                return 1;
            }
            nanosleep(&nap, NULL);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "FAILED: child of round %d: status %#x\n", round, status);
            return 1;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("fork: %d children ok\n", rounds);
    return 0;
}
