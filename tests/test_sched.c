/* test_sched.c - the scheduler on stories260K: concurrent requests get the same tokens
 * as a request alone, seeded sampling is reproducible whatever shares the batch, stop
 * strings cut the text and are held back, max_tokens ends with "length", cancellation
 * (queued or running) returns every KV block, a full queue refuses, and stopping ends
 * running requests with a final event. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chatd/sched.h"
#include "testutil.h"

typedef struct result {
    char text[8192];
    size_t len;
    int32_t ids[512];
    int n_ids;
    sched_finish finish;
    int events;
} result;

/* Drains a request to its end. */
static void drain(sched_req *r, result *out) {
    memset(out, 0, sizeof *out);
    sched_event ev;
    int rc;
    while ((rc = sched_next(r, &ev, 10.0)) >= 0) {
        if (rc == 0) continue;
        out->events++;
        if (ev.text_len && out->len + ev.text_len < sizeof out->text) {
            memcpy(out->text + out->len, ev.text, ev.text_len);
            out->len += ev.text_len;
        }
        for (int k = 0; k < ev.n_tokens && out->n_ids < 512; k++)
            out->ids[out->n_ids++] = ev.tokens[k].chosen.id;
        if (ev.finish) out->finish = ev.finish;
        sched_event_free(&ev);
    }
}

static sched_req *submit(sched *s, engine *e, const char *prompt, int64_t max_tokens, float temp,
                         uint64_t seed, const char *stop) {
    tok_ids ids = {0};
    tok_encode(e->tok, prompt, strlen(prompt), true, false, &ids, NULL);
    sched_params p;
    memset(&p, 0, sizeof p);
    p.prompt = ids.v;
    p.n_prompt = ids.n;
    p.max_tokens = max_tokens;
    p.sampling = sampler_defaults();
    p.sampling.temperature = temp;
    p.sampling.seed = seed;
    p.stop[0] = stop;
    bool full = false;
    chatd_error err = {{0}};
    sched_req *r = sched_submit(s, &p, &full, &err);
    tok_ids_free(&ids);
    return r;
}

typedef struct job {
    sched *s;
    engine *e;
    const char *prompt;
    float temp;
    uint64_t seed;
    result res;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    sched_req *r = submit(j->s, j->e, j->prompt, 48, j->temp, j->seed, NULL);
    if (r) {
        drain(r, &j->res);
        sched_req_release(r);
    }
    return NULL;
}

static const char *prompts[] = {"Once upon a time",       "The little dog", "Lily and Tom went to",
                                "One day, a big",         "The sun was",    "Ben had a red ball",
                                "There was a girl named", "Mom said"};

int main(void) {
    engine e;
    engine_options o = engine_defaults();
    o.n_threads = 2;
    o.max_ctx = 256;
    o.max_batch = 64;
    o.kv_blocks = 8 * 256 / KV_BLOCK;
    chatd_error err = {{0}};
    const char *path = tu_model_path("stories260K.gguf");
    tu_case("open");
    if (engine_open(&e, path, &o, &err) != 0) {
        TU_CHECK(0, "%s", err.msg);
        return tu_finish();
    }
    sched_options so = {
        .max_running = 8, .queue_size = 16, .chunk = 5, .step_tokens = 64, .ctx_size = 256};
    sched *s = sched_start(&e, &so, &err);

    /* alone, one at a time */
    result solo[8], solo_seeded[8];
    for (int i = 0; i < 8; i++) {
        sched_req *r = submit(s, &e, prompts[i], 48, 0, 0, NULL);
        drain(r, &solo[i]);
        sched_req_release(r);
        r = submit(s, &e, prompts[i], 48, 1.0f, 1000 + (uint64_t)i, NULL);
        drain(r, &solo_seeded[i]);
        sched_req_release(r);
    }
    tu_case("solo/finish-length");
    TU_CHECK(solo[0].finish == SCHED_FINISH_LENGTH && solo[0].n_ids == 48, "finish %d, %d tokens",
             solo[0].finish, solo[0].n_ids);

    /* all eight at once from eight threads, greedy and seeded */
    for (int pass = 0; pass < 2; pass++) {
        job jobs[8];
        pthread_t th[8];
        for (int i = 0; i < 8; i++) {
            jobs[i] = (job){.s = s,
                            .e = &e,
                            .prompt = prompts[i],
                            .temp = pass ? 1.0f : 0,
                            .seed = 1000 + (uint64_t)i};
            pthread_create(&th[i], NULL, run_job, &jobs[i]);
        }
        for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < 8; i++) {
            tu_case("concurrent/%s/%d", pass ? "seeded" : "greedy", i);
            const result *want = pass ? &solo_seeded[i] : &solo[i];
            TU_CHECK(jobs[i].res.n_ids == want->n_ids &&
                         !memcmp(jobs[i].res.ids, want->ids, (size_t)want->n_ids * sizeof(int32_t)),
                     "tokens differ from the solo run");
            TU_CHECK(jobs[i].res.len == want->len &&
                         !memcmp(jobs[i].res.text, want->text, want->len),
                     "text differs from the solo run");
        }
    }

    tu_case("stop-string");
    {
        /* a stop string taken from the middle of the solo text */
        char stop[16];
        size_t at = solo[0].len / 2;
        memcpy(stop, solo[0].text + at, 5);
        stop[5] = 0;
        sched_req *r = submit(s, &e, prompts[0], 48, 0, 0, stop);
        result res;
        drain(r, &res);
        sched_req_release(r);
        char *first = memmem(solo[0].text, solo[0].len, stop, 5);
        size_t want = first ? (size_t)(first - solo[0].text) : 0;
        TU_CHECK(res.finish == SCHED_FINISH_STOP, "finish %d", res.finish);
        TU_CHECK(res.len == want && !memcmp(res.text, solo[0].text, want),
                 "text is not cut before the stop string '%s' (%zu vs %zu bytes)", stop, res.len,
                 want);
    }

    tu_case("cancel-running-returns-blocks");
    {
        sched_req *r = submit(s, &e, prompts[1], 200, 0, 0, NULL);
        sched_event ev;
        while (sched_next(r, &ev, 10.0) == 1) {
            bool got = ev.n_tokens > 0;
            sched_event_free(&ev);
            if (got) break;
        }
        sched_cancel(r);
        result res;
        drain(r, &res);
        sched_req_release(r);
        TU_CHECK(res.finish == SCHED_FINISH_CANCELLED, "finish %d", res.finish);
        usleep(100000);
        sched_stats st = sched_get_stats(s);
        TU_CHECK(st.kv_blocks_used == 0 && st.running == 0, "%lld blocks, %lld running",
                 (long long)st.kv_blocks_used, (long long)st.running);
    }

    tu_case("queue-full-refused");
    {
        sched_req *rs[40];
        int accepted = 0, refused = 0;
        for (int i = 0; i < 40; i++) {
            bool full = false;
            tok_ids ids = {0};
            tok_encode(e.tok, "Hi", 2, true, false, &ids, NULL);
            sched_params p;
            memset(&p, 0, sizeof p);
            p.prompt = ids.v;
            p.n_prompt = ids.n;
            p.max_tokens = 100;
            p.sampling = sampler_defaults();
            rs[i] = sched_submit(s, &p, &full, &err);
            tok_ids_free(&ids);
            if (rs[i])
                accepted++;
            else if (full)
                refused++;
        }
        TU_CHECK(refused > 0 && accepted >= 16, "accepted %d, refused %d", accepted, refused);
        /* cancel them all, queued or running */
        for (int i = 0; i < 40; i++)
            if (rs[i]) sched_cancel(rs[i]);
        for (int i = 0; i < 40; i++)
            if (rs[i]) {
                result res;
                drain(rs[i], &res);
                sched_req_release(rs[i]);
            }
        usleep(100000);
        sched_stats st = sched_get_stats(s);
        TU_CHECK(st.kv_blocks_used == 0 && st.queued == 0 && st.running == 0,
                 "after cancelling: %lld blocks, %lld queued, %lld running",
                 (long long)st.kv_blocks_used, (long long)st.queued, (long long)st.running);
    }

    tu_case("prompt-beyond-context-refused");
    {
        sched_params p;
        memset(&p, 0, sizeof p);
        int32_t big[300];
        for (int i = 0; i < 300; i++) big[i] = 5;
        p.prompt = big;
        p.n_prompt = 300;
        p.sampling = sampler_defaults();
        bool full = false;
        TU_CHECK(sched_submit(s, &p, &full, &err) == NULL && !full, "accepted an over-long prompt");
    }

    tu_case("stop-ends-running-requests");
    {
        sched_req *r = submit(s, &e, prompts[2], 200, 0, 0, NULL);
        sched_stop(s, 0.0);
        result res;
        drain(r, &res);
        sched_req_release(r);
        TU_CHECK(res.finish == SCHED_FINISH_SHUTDOWN || res.finish == SCHED_FINISH_LENGTH,
                 "finish %d", res.finish);
        TU_CHECK(kv_pool_used(&e.kv) == 0, "%lld blocks in use after stop",
                 (long long)kv_pool_used(&e.kv));
    }
    sched_free(s);
    engine_close(&e);
    return tu_finish();
}
