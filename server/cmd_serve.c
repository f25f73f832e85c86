/* cmd_serve.c - `chatd serve`: loads settings, starts listening (so /health can say
 * "loading"), loads the model, starts the scheduler, then waits for SIGTERM/SIGINT and
 * shuts down in order: stop accepting, let running requests finish up to the grace
 * period, end the rest with a final chunk, close connections, free everything. */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "server.h"

/* Reads the first line of a key file. */
static char *serve_read_key(const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot read api_key_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1024];
    char *key = NULL;
    if (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line) key = strdup(line);
    }
    fclose(fp);
    if (!key) snprintf(err, errlen, "api_key_file %s holds no key", path);
    return key;
}

/* The model id: --model-alias, else general.name, else the file name without .gguf. */
static char *serve_model_id(const config *cfg, const engine *e) {
    if (cfg->model_alias && *cfg->model_alias) return strdup(cfg->model_alias);
    gguf_str name;
    if (gguf_get_str(e->m->file, "general.name", &name, NULL) == 0 && name.len > 0 &&
        name.len < 256) {
        char *s = malloc(name.len + 1);
        if (s) gguf_str_copy(name, s, name.len + 1);
        return s;
    }
    char *copy = strdup(cfg->model);
    if (!copy) return NULL;
    char *base = basename(copy);
    char *dot = strstr(base, ".gguf");
    if (dot) *dot = 0;
    char *id = strdup(base);
    free(copy);
    return id;
}

/* KV pool size: --kv-memory, else room for `parallel` full contexts, at most 4 GiB. */
static int64_t serve_kv_blocks(const config *cfg, const model *m, int64_t ctx) {
    const model_hparams *hp = &m->hp;
    size_t block = kv_block_bytes(strcmp(cfg->kv_type, "f32") ? KV_F16 : KV_F32, hp->n_layer,
                                  hp->n_head_kv * hp->head_dim_k, hp->n_head_kv * hp->head_dim_v);
    int64_t bytes = cfg->kv_memory;
    if (bytes <= 0) {
        double want =
            (double)cfg->parallel * (double)((ctx + KV_BLOCK - 1) / KV_BLOCK) * (double)block;
        bytes = want > 4.0 * (1 << 30) ? (int64_t)4 << 30 : (int64_t)want;
    }
    int64_t n = bytes / (int64_t)block;
    return n < 1 ? 1 : n;
}

int cmd_serve(int argc, char **argv) {
    config cfg;
    char err[1024] = "";
    bool help = false;
    if (config_load(&cfg, argc, argv, &help, err, sizeof err) != 0 || help) {
        if (help) {
            config_usage(stdout);
            config_free(&cfg);
            return 0;
        }
        fprintf(stderr, "chatd serve: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg = &cfg;
    srv.level = !strcmp(cfg.log_level, "error")   ? LOG_ERROR
                : !strcmp(cfg.log_level, "warn")  ? LOG_WARN
                : !strcmp(cfg.log_level, "debug") ? LOG_DEBUG
                                                  : LOG_INFO;
    if (cfg.api_key && *cfg.api_key)
        srv.api_key = strdup(cfg.api_key);
    else if (cfg.api_key_file &&
             !(srv.api_key = serve_read_key(cfg.api_key_file, err, sizeof err))) {
        fprintf(stderr, "chatd serve: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    /* every thread started from here on inherits the blocked signals; main waits for them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    engine e;
    memset(&e, 0, sizeof e);
    if (http_start(&srv, err, sizeof err) != 0) {
        fprintf(stderr, "chatd serve: %s\n", err);
        goto out;
    }
    srv_log(&srv, LOG_INFO, "listening on http://%s:%d, loading %s", cfg.host, cfg.port, cfg.model);
    engine_options eo = engine_defaults();
    eo.n_threads = cfg.threads;
    eo.kernels = cfg.kernels;
    eo.max_batch = cfg.batch;
    eo.kv_type = strcmp(cfg.kv_type, "f32") ? KV_F16 : KV_F32;
    chatd_error cerr = {{0}};
    /* open once to learn the model's context, then size the KV pool from it */
    model *probe = model_open(cfg.model, &cerr);
    if (!probe) {
        fprintf(stderr, "chatd serve: %s\n", cerr.msg);
        goto out;
    }
    int64_t ctx = cfg.ctx_size > 0 ? cfg.ctx_size : probe->hp.n_ctx_train;
    if (ctx > probe->hp.n_ctx_train) ctx = probe->hp.n_ctx_train;
    eo.kv_blocks = serve_kv_blocks(&cfg, probe, ctx);
    /* the context is capped by memory: one sequence must fit in the pool */
    if (ctx > eo.kv_blocks * KV_BLOCK) ctx = eo.kv_blocks * KV_BLOCK;
    eo.max_ctx = ctx;
    model_close(probe);
    if (engine_open(&e, cfg.model, &eo, &cerr) != 0) {
        fprintf(stderr, "chatd serve: %s\n", cerr.msg);
        goto out;
    }
    srv.e = &e;
    srv.model_id = serve_model_id(&cfg, &e);
    struct stat st;
    srv.created = stat(cfg.model, &st) == 0 ? (long long)st.st_mtime : (long long)time(NULL);
    if (!srv.model_id || prompt_init(&srv, err, sizeof err) != 0) {
        fprintf(stderr, "chatd serve: %s\n", err[0] ? err : "out of memory");
        goto out;
    }
    srv.cons = cons_vocab_new(e.tok, &cerr);
    if (!srv.cons) {
        fprintf(stderr, "chatd serve: %s\n", cerr.msg);
        goto out;
    }
    sched_options so = {.max_running = cfg.parallel,
                        .queue_size = cfg.queue_size,
                        .chunk = cfg.chunk,
                        .step_tokens = cfg.batch,
                        .ctx_size = ctx,
                        .deadline_s = cfg.deadline};
    srv.s = sched_start(&e, &so, &cerr);
    if (!srv.s) {
        fprintf(stderr, "chatd serve: %s\n", cerr.msg);
        goto out;
    }
    atomic_store(&srv.ready, true);
    srv_log(&srv, LOG_INFO,
            "ready: model %s, %s kernels, %d threads, context %lld, %d parallel, KV pool %lld "
            "blocks (%.0f MiB)",
            srv.model_id, kern_level_name(e.level), e.o.n_threads, (long long)ctx, cfg.parallel,
            (long long)e.kv.n_blocks,
            (double)e.kv.n_blocks *
                (double)kv_block_bytes(e.kv.type, e.kv.n_layer, e.kv.k_dim, e.kv.v_dim) /
                1048576.0);
    int sig = 0;
    sigwait(&sigs, &sig);
    srv_log(&srv, LOG_INFO, "%s: stopping (grace %.0fs)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            cfg.shutdown_grace);
    atomic_store(&srv.stopping, true);
    http_quiesce(&srv);
    sched_stop(srv.s, cfg.shutdown_grace);
    rc = 0;
out:
    http_stop(&srv);
    sched_free(srv.s);
    prompt_free(&srv);
    cons_vocab_free(srv.cons);
    free(srv.model_id);
    free(srv.api_key);
    if (srv.e) engine_close(&e);
    config_free(&cfg);
    if (rc == 0) srv_log(&srv, LOG_INFO, "stopped");
    return rc;
}
