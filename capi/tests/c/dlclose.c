/* A plugin host: dlopens a Rust cdylib whose global allocator is slabpool
 * (capi/tests/plugin), calls into it from four threads that then stay
 * alive, dlcloses it, forks, lets the threads exit, forks again, starts
 * and joins a fresh thread; then opens and closes the plugin once more
 * (with no thread left that used it, this close may really unload it) and
 * forks a last time. Every fork's child allocates and exits 0. Prints
 * "unloaded: yes|no" (whether the last dlclose unmapped the plugin) and
 * "dlclose: ok"; any crash (a destructor or fork handler left pointing
 * into the unmapped plugin) fails the program.
 *
 *   cc -O2 -pthread dlclose.c -ldl -o dlclose && ./dlclose path/to/plugin.so */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 4, ROUNDS = 3 };

typedef uint64_t (*churn_fn)(uint32_t);

static churn_fn churn;
static uint64_t sums[THREADS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done, may_exit;

static void *worker(void *arg) {
    size_t id = (size_t)(uintptr_t)arg;
    sums[id] = churn(ROUNDS);
    pthread_mutex_lock(&lock);
    done++;
    pthread_cond_broadcast(&cond);
    while (!may_exit)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL; /* exits after the plugin was closed */
}

static void *idle(void *arg) {
    (void)arg;
    free(malloc(100));
    return NULL;
}

static void fork_and_wait(const char *when) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        char *p = malloc(1000);
        memset(p, 1, 1000);
        free(p);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAILED: child forked %s: status %#x\n", when, status);
        exit(1);
    }
    printf("fork %s: ok\n", when);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s plugin.so\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "FAILED: dlopen: %s\n", dlerror());
        return 1;
    }
    churn = (churn_fn)dlsym(h, "plugin_churn");
    if (!churn) {
        fprintf(stderr, "FAILED: dlsym: %s\n", dlerror());
        return 1;
    }
    pthread_t t[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "FAILED: pthread_create\n");
            return 1;
        }
    pthread_mutex_lock(&lock);
    while (done < THREADS)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (size_t i = 1; i < THREADS; i++)
        if (sums[i] != sums[0]) {
            fprintf(stderr, "FAILED: thread %zu computed %llu, thread 0 %llu\n", i,
                    (unsigned long long)sums[i], (unsigned long long)sums[0]);
            return 1;
        }
    printf("threads called the plugin: checksum %llu\n", (unsigned long long)sums[0]);
    churn = NULL;
    if (dlclose(h) != 0) {
        fprintf(stderr, "FAILED: dlclose: %s\n", dlerror());
        return 1;
    }
    printf("dlclose with the threads alive: ok\n");
    fork_and_wait("after dlclose, threads alive");
    pthread_mutex_lock(&lock);
    may_exit = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("threads exited after dlclose: ok\n");
    fork_and_wait("after the threads exited");
    pthread_t fresh;
    pthread_create(&fresh, NULL, idle, NULL);
    pthread_join(fresh, NULL);
    /* No thread that used the plugin is left: open and close it again. */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "FAILED: dlopen again: %s\n", dlerror());
        return 1;
    }
    dlclose(h);
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    printf("unloaded: %s\n", still ? "no" : "yes");
    if (still)
        dlclose(still);
    fork_and_wait("after the last dlclose");
    pthread_create(&fresh, NULL, idle, NULL);
    pthread_join(fresh, NULL);
    printf("dlclose: ok\n");
    return 0;
}
