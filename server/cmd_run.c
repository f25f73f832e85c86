/* cmd_run.c - the engine from the command line: `chatd run` generates text, `chatd score`
 * prints teacher-forced next-token log-probabilities, `chatd bench` measures prompt
 * processing and generation speed the way llama-bench does. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "chatd/engine.h"
#include "chatd/sampler.h"
#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Options shared by run, score and bench. */
typedef struct run_args {
    const char *model;
    const char *prompt;
    const char *ids;
    int64_t n_predict;
    int top_logprobs;
    bool json;
    bool ignore_eos;
    sampler_params sp;
    engine_options eo;
    /* bench */
    int64_t pp, tg;
    int reps;
} run_args;

static const char *run_common_help =
    "  -m, --model FILE     the GGUF model (required)\n"
    "  -t, --threads N      compute threads (default: one per core)\n"
    "  --kernels LEVEL      scalar, avx2 or avx512 (default: the best this CPU runs)\n"
    "  --float              exact float activations (slow; no rounding to Q8 as llama.cpp does)\n"
    "  --batch N            tokens per forward pass (default 512)\n"
    "  --ctx N              context size (default: the model's)\n"
    "  --kv-f32             keep the KV cache in F32 (default F16)\n";

/* Parses one option shared by the commands; returns how many argv entries it took
 * (0 = not a shared option, -1 = error, message printed). */
static int run_parse_common(int argc, char **argv, int i, run_args *a, const char *cmd) {
    const char *o = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE                                                                                 \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "chatd %s: %s needs a value\n", cmd, o);                               \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
        NEED_VALUE;
        a->model = v;
        return 2;
    }
    if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
        NEED_VALUE;
        a->eo.n_threads = atoi(v);
        return 2;
    }
    if (!strcmp(o, "--kernels")) {
        NEED_VALUE;
        a->eo.kernels = v;
        return 2;
    }
    if (!strcmp(o, "--float")) {
        a->eo.float_activations = true;
        return 1;
    }
    if (!strcmp(o, "--batch")) {
        NEED_VALUE;
        a->eo.max_batch = atoll(v);
        return 2;
    }
    if (!strcmp(o, "--ctx")) {
        NEED_VALUE;
        a->eo.max_ctx = atoll(v);
        return 2;
    }
    if (!strcmp(o, "--kv-f32")) {
        a->eo.kv_type = KV_F32;
        return 1;
    }
#undef NEED_VALUE
    return 0;
}

/* Parses "1,2,3" or "1 2 3" into ids; -1 on a bad number. */
static int run_parse_ids(const char *s, tok_ids *out) {
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\n' || *s == '[' || *s == ']') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) return -1;
        if (tok_ids_push(out, (int32_t)v, NULL) != 0) return -1;
        s = end;
    }
    return 0;
}

static cJSON *run_top_json(const sampler_token *top, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", top[i].id);
        cJSON_AddNumberToObject(e, "logprob", top[i].logprob);
        cJSON_AddItemToArray(arr, e);
    }
    return arr;
}

static void run_print_json(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
}

static int run_usage(const char *cmd, FILE *out) {
    if (!strcmp(cmd, "run"))
        fprintf(out,
                "usage: chatd run -m MODEL (-p PROMPT | --prompt-ids IDS) [-n N] [--temp T]\n"
                "       [--top-k K] [--top-p P] [--min-p P] [--seed S] [--top-logprobs K]\n"
                "       [--ignore-eos] [--json] [options]\n\n"
                "Generates a continuation of the prompt and prints it, then the prompt and\n"
                "generation speeds. --json prints each step's id and top log-probabilities.\n"
                "The prompt is tokenized with BOS as the model asks and special tokens parsed.\n");
    else if (!strcmp(cmd, "score"))
        fprintf(out,
                "usage: chatd score -m MODEL --ids IDS [--top-logprobs K] [--json] [options]\n\n"
                "One batched forward pass over the ids (teacher forcing); prints, for every\n"
                "position, the top-K (id, logprob) of the next-token distribution.\n");
    else
        fprintf(out, "usage: chatd bench -m MODEL [-p 512] [-n 128] [-r 5] [--json] [options]\n\n"
                     "Prompt processing (pp: one batch of p tokens) and generation (tg: n single-\n"
                     "token steps) in tokens/s, mean and standard deviation over r repetitions,\n"
                     "as llama-bench measures them.\n");
    fprintf(out, "\noptions:\n%s", run_common_help);
    return out == stdout ? 0 : 2;
}

/* Parses the command line of run/score/bench into a. */
static int run_parse(int argc, char **argv, run_args *a) {
    const char *cmd = argv[0];
    memset(a, 0, sizeof *a);
    a->sp = sampler_defaults();
    a->eo = engine_defaults();
    a->n_predict = 128;
    a->top_logprobs = !strcmp(cmd, "score") ? 10 : 0;
    a->pp = 512;
    a->tg = 128;
    a->reps = 5;
    if (!strcmp(cmd, "run")) a->sp.temperature = 0.8f;
    for (int i = 1; i < argc;) {
        int used = run_parse_common(argc, argv, i, a, cmd);
        if (used < 0) return -1;
        if (used > 0) {
            i += used;
            continue;
        }
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool flag = true;
        if (!strcmp(o, "--json"))
            a->json = true;
        else if (!strcmp(o, "--ignore-eos"))
            a->ignore_eos = true;
        else
            flag = false;
        if (flag) {
            i++;
            continue;
        }
        if (!v) {
            fprintf(stderr, "chatd %s: unknown option or missing value: %s\n", cmd, o);
            return -1;
        }
        if (!strcmp(o, "-p") && strcmp(cmd, "bench"))
            a->prompt = v;
        else if (!strcmp(o, "-p"))
            a->pp = atoll(v);
        else if (!strcmp(o, "--prompt-ids") || !strcmp(o, "--ids"))
            a->ids = v;
        else if (!strcmp(o, "-n"))
            a->n_predict = a->tg = atoll(v);
        else if (!strcmp(o, "-r") || !strcmp(o, "--reps"))
            a->reps = atoi(v);
        else if (!strcmp(o, "--temp"))
            a->sp.temperature = strtof(v, NULL);
        else if (!strcmp(o, "--top-k"))
            a->sp.top_k = atoi(v);
        else if (!strcmp(o, "--top-p"))
            a->sp.top_p = strtof(v, NULL);
        else if (!strcmp(o, "--min-p"))
            a->sp.min_p = strtof(v, NULL);
        else if (!strcmp(o, "--seed"))
            a->sp.seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--top-logprobs"))
            a->top_logprobs = atoi(v);
        else {
            fprintf(stderr, "chatd %s: unknown option %s\n", cmd, o);
            return -1;
        }
        i += 2;
    }
    if (!a->model) {
        fprintf(stderr, "chatd %s: -m MODEL is required\n", cmd);
        return -1;
    }
    if (a->top_logprobs < 0 || a->top_logprobs > SAMPLER_MAX_TOP) {
        fprintf(stderr, "chatd %s: --top-logprobs must be 0 to %d\n", cmd, SAMPLER_MAX_TOP);
        return -1;
    }
    a->sp.top_logprobs = a->top_logprobs;
    return 0;
}

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return run_usage("run", stdout);
    run_args a;
    if (run_parse(argc, argv, &a) != 0) return run_usage("run", stderr);
    chatd_error err = {{0}};
    engine e;
    if (engine_open(&e, a.model, &a.eo, &err) != 0) {
        fprintf(stderr, "chatd run: %s\n", err.msg);
        return 1;
    }
    tok_ids prompt = {0};
    int rc = 0;
    if (a.ids)
        rc = run_parse_ids(a.ids, &prompt) == 0 ? 0 : chatd_errorf(&err, "bad --prompt-ids");
    else if (a.prompt)
        rc = tok_encode(e.tok, a.prompt, strlen(a.prompt), true, true, &prompt, &err);
    else if (tok_add_bos(e.tok) || tok_bos(e.tok) != TOK_NULL)
        rc = tok_ids_push(&prompt, tok_bos(e.tok), &err); /* generate from BOS */
    if (rc == 0 && prompt.n == 0) rc = chatd_errorf(&err, "the prompt is empty");
    int64_t V = e.m->hp.n_vocab;
    float *logits = malloc((size_t)V * sizeof *logits);
    sampler *smp = sampler_create(&a.sp, V, &err);
    if (rc == 0 && (!logits || !smp)) rc = -1;
    kv_seq seq = {0};
    cJSON *out = cJSON_CreateObject(), *steps = NULL;
    if (a.json) {
        cJSON *pi = cJSON_AddArrayToObject(out, "prompt_ids");
        for (size_t i = 0; i < prompt.n; i++)
            cJSON_AddItemToArray(pi, cJSON_CreateNumber(prompt.v[i]));
        steps = cJSON_AddArrayToObject(out, "steps");
    }
    double t0 = now_s(), t_prompt = 0;
    if (rc == 0) rc = engine_prefill(&e, &seq, prompt.v, (int64_t)prompt.n, 0, false, logits, &err);
    t_prompt = now_s() - t0;
    tok_stream ts;
    tok_stream_init(&ts, e.tok, false);
    tok_buf text = {0};
    int64_t n_gen = 0, pos = (int64_t)prompt.n;
    double t1 = now_s();
    while (rc == 0 && n_gen < a.n_predict) {
        sampler_result res;
        int32_t id = sampler_sample(smp, logits, &res);
        sampler_accept(smp, id);
        n_gen++;
        if (a.json) {
            cJSON *st = cJSON_CreateObject();
            cJSON_AddNumberToObject(st, "id", id);
            cJSON_AddNumberToObject(st, "logprob", res.chosen.logprob);
            cJSON_AddItemToObject(st, "top", run_top_json(res.top, res.n_top));
            cJSON_AddItemToArray(steps, st);
        } else {
            text.len = 0;
            rc = tok_stream_push(&ts, id, &text, &err);
            if (text.len) fwrite(text.data, 1, text.len, stdout);
            fflush(stdout);
        }
        if (!a.ignore_eos && tok_is_eog(e.tok, id)) break;
        if (n_gen == a.n_predict) break;
        rc = engine_prefill(&e, &seq, &id, 1, pos++, false, logits, &err);
    }
    double t_gen = now_s() - t1;
    if (rc == 0 && !a.json) {
        text.len = 0;
        tok_stream_flush(&ts, &text, &err);
        if (text.len) fwrite(text.data, 1, text.len, stdout);
        printf("\n");
    }
    if (rc == 0) {
        double pps = (double)prompt.n / t_prompt, gps = n_gen > 1 ? (double)(n_gen - 1) / t_gen : 0;
        if (a.json) {
            cJSON_AddNumberToObject(out, "prompt_tokens_per_s", pps);
            cJSON_AddNumberToObject(out, "gen_tokens_per_s", gps);
            run_print_json(out);
        }
        fprintf(stderr,
                "prompt: %zu tokens, %.1f tokens/s; generation: %lld tokens, %.1f tokens/s\n",
                prompt.n, pps, (long long)n_gen, gps);
    } else {
        fprintf(stderr, "chatd run: %s\n", err.msg);
    }
    cJSON_Delete(out);
    tok_buf_free(&text);
    kv_seq_release(&e.kv, &seq);
    kv_seq_free(&seq);
    sampler_free(smp);
    free(logits);
    tok_ids_free(&prompt);
    engine_close(&e);
    return rc == 0 ? 0 : 1;
}

int cmd_score(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return run_usage("score", stdout);
    run_args a;
    if (run_parse(argc, argv, &a) != 0) return run_usage("score", stderr);
    if (!a.ids) {
        fprintf(stderr, "chatd score: --ids is required\n");
        return 2;
    }
    tok_ids ids = {0};
    if (run_parse_ids(a.ids, &ids) != 0 || ids.n == 0) {
        fprintf(stderr, "chatd score: --ids must be a list of token ids\n");
        tok_ids_free(&ids);
        return 2;
    }
    chatd_error err = {{0}};
    engine e;
    if (a.eo.max_batch <= 0) a.eo.max_batch = (int64_t)ids.n; /* one batched forward */
    if (engine_open(&e, a.model, &a.eo, &err) != 0) {
        fprintf(stderr, "chatd score: %s\n", err.msg);
        tok_ids_free(&ids);
        return 1;
    }
    int64_t V = e.m->hp.n_vocab, n = (int64_t)ids.n;
    float *logits = malloc((size_t)n * (size_t)V * sizeof *logits);
    kv_seq seq = {0};
    int rc = logits ? engine_prefill(&e, &seq, ids.v, n, 0, true, logits, &err)
                    : chatd_errorf(&err, "out of memory for %lld x %lld logits", (long long)n,
                                   (long long)V);
    if (rc == 0) {
        cJSON *out = cJSON_CreateObject();
        cJSON *steps = cJSON_AddArrayToObject(out, "steps");
        for (int64_t i = 0; i < n; i++) {
            sampler_token top[SAMPLER_MAX_TOP];
            float next_lp = 0;
            int32_t next = i + 1 < n ? ids.v[i + 1] : -1;
            sampler_top_logprobs(logits + (size_t)i * V, V, a.top_logprobs, top, next, &next_lp);
            if (a.json) {
                cJSON *st = cJSON_CreateObject();
                cJSON_AddNumberToObject(st, "pos", (double)i);
                if (next >= 0) {
                    cJSON_AddNumberToObject(st, "next", next);
                    cJSON_AddNumberToObject(st, "next_logprob", next_lp);
                }
                cJSON_AddItemToObject(st, "top", run_top_json(top, a.top_logprobs));
                cJSON_AddItemToArray(steps, st);
            } else {
                printf("%lld:", (long long)i);
                for (int k = 0; k < a.top_logprobs; k++)
                    printf(" %d:%.4f", top[k].id, top[k].logprob);
                printf("\n");
            }
        }
        if (a.json) run_print_json(out);
        cJSON_Delete(out);
    } else {
        fprintf(stderr, "chatd score: %s\n", err.msg);
    }
    kv_seq_release(&e.kv, &seq);
    kv_seq_free(&seq);
    free(logits);
    tok_ids_free(&ids);
    engine_close(&e);
    return rc == 0 ? 0 : 1;
}

static void run_stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

int cmd_bench(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return run_usage("bench", stdout);
    run_args a;
    if (run_parse(argc, argv, &a) != 0) return run_usage("bench", stderr);
    if (a.pp < 0 || a.tg < 0 || a.reps < 1) {
        fprintf(stderr, "chatd bench: -p, -n must be >= 0 and -r >= 1\n");
        return 2;
    }
    chatd_error err = {{0}};
    engine e;
    if (a.eo.max_batch <= 0) a.eo.max_batch = a.pp > 0 ? a.pp : 1;
    if (a.eo.max_ctx <= 0) a.eo.max_ctx = (a.pp > a.tg ? a.pp : a.tg) + 1;
    if (engine_open(&e, a.model, &a.eo, &err) != 0) {
        fprintf(stderr, "chatd bench: %s\n", err.msg);
        return 1;
    }
    int64_t V = e.m->hp.n_vocab, n_tok = a.pp > a.tg ? a.pp : a.tg;
    int32_t *toks = malloc((size_t)(n_tok ? n_tok : 1) * sizeof *toks);
    float *logits = malloc((size_t)V * sizeof *logits);
    double *pp_s = calloc((size_t)a.reps, sizeof *pp_s),
           *tg_s = calloc((size_t)a.reps, sizeof *tg_s);
    int rc = toks && logits && pp_s && tg_s ? 0 : chatd_errorf(&err, "out of memory");
    uint64_t x = 42;
    for (int64_t i = 0; i < n_tok && rc == 0; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((x >> 33) % (uint64_t)V);
    }
    kv_seq seq = {0};
    /* one untimed warm-up of each, as llama-bench does */
    for (int r = -1; r < a.reps && rc == 0; r++) {
        if (a.pp > 0) {
            kv_seq_release(&e.kv, &seq);
            double t = now_s();
            rc = engine_prefill(&e, &seq, toks, a.pp, 0, false, logits, &err);
            if (r >= 0) pp_s[r] = (double)a.pp / (now_s() - t);
        }
        if (a.tg > 0 && rc == 0) {
            kv_seq_release(&e.kv, &seq);
            double t = now_s();
            for (int64_t i = 0; i < a.tg && rc == 0; i++)
                rc = engine_prefill(&e, &seq, &toks[i], 1, i, false, logits, &err);
            if (r >= 0) tg_s[r] = (double)a.tg / (now_s() - t);
        }
    }
    if (rc == 0) {
        double pm, psd, tm, tsd;
        /* peak resident memory: the mapped weights plus what the engine allocated */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long long rss = (long long)ru.ru_maxrss * 1024;
        long long kv_bytes =
            (long long)e.kv.n_blocks *
            (long long)kv_block_bytes(e.kv.type, e.kv.n_layer, e.kv.k_dim, e.kv.v_dim);
        run_stats(pp_s, a.reps, &pm, &psd);
        run_stats(tg_s, a.reps, &tm, &tsd);
        if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", a.model);
            cJSON_AddNumberToObject(o, "threads", e.o.n_threads);
            cJSON_AddStringToObject(o, "kernels", kern_level_name(e.level));
            cJSON_AddNumberToObject(o, "pp", (double)a.pp);
            cJSON_AddNumberToObject(o, "pp_tokens_per_s", pm);
            cJSON_AddNumberToObject(o, "pp_stddev", psd);
            cJSON_AddNumberToObject(o, "tg", (double)a.tg);
            cJSON_AddNumberToObject(o, "tg_tokens_per_s", tm);
            cJSON_AddNumberToObject(o, "tg_stddev", tsd);
            cJSON_AddNumberToObject(o, "file_bytes", (double)e.m->file->size);
            cJSON_AddNumberToObject(o, "kv_pool_bytes", (double)kv_bytes);
            cJSON_AddNumberToObject(o, "max_rss_bytes", (double)rss);
            run_print_json(o);
            cJSON_Delete(o);
        } else {
            printf("model: %s  threads: %d  kernels: %s  reps: %d\n", a.model, e.o.n_threads,
                   kern_level_name(e.level), a.reps);
            if (a.pp > 0) printf("pp%-6lld %10.2f ± %.2f tokens/s\n", (long long)a.pp, pm, psd);
            if (a.tg > 0) printf("tg%-6lld %10.2f ± %.2f tokens/s\n", (long long)a.tg, tm, tsd);
            printf("memory: peak RSS %.1f MiB (model file %.1f MiB, KV pool %.1f MiB)\n",
                   (double)rss / 1048576.0, (double)e.m->file->size / 1048576.0,
                   (double)kv_bytes / 1048576.0);
        }
    } else {
        fprintf(stderr, "chatd bench: %s\n", err.msg);
    }
    kv_seq_release(&e.kv, &seq);
    kv_seq_free(&seq);
    free(toks);
    free(logits);
    free(pp_s);
    free(tg_s);
    engine_close(&e);
    return rc == 0 ? 0 : 1;
}
