/* test_config.c - settings of chatd serve: defaults, a config file, CHATD_* environment
 * variables and flags, with flags > environment > file > defaults, and invalid values
 * refused with a message naming the setting and where it came from. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

static int load(config *c, char *err, int argc, char **argv) {
    bool help = false;
    return config_load(c, argc, argv, &help, err, 512);
}

int main(void) {
    char err[512];
    config c;
    char path[] = "/tmp/chatd-test-config-XXXXXX";
    int fd = mkstemp(path);
    const char *file = "# a comment\n\nport = 9001\nctx_size = 2048\nparallel = 3\nhost=0.0.0.0\n"
                       "kv_memory = 64MiB\nlog_level = debug\n";
    if (fd < 0 || write(fd, file, strlen(file)) != (ssize_t)strlen(file)) return 1;
    close(fd);
    unsetenv("CHATD_PORT");
    unsetenv("CHATD_CTX_SIZE");
    unsetenv("CHATD_MODEL");
    unsetenv("CHATD_CONFIG");

    tu_case("defaults");
    char *a1[] = {"serve", "--model", "m.gguf"};
    TU_CHECK(load(&c, err, 3, a1) == 0, "%s", err);
    TU_CHECK(!strcmp(c.host, "127.0.0.1") && c.port == 8080 && c.body_limit == 8 << 20,
             "host %s port %d body_limit %lld", c.host, c.port, (long long)c.body_limit);
    config_free(&c);

    tu_case("file");
    char *a2[] = {"serve", "--model", "m.gguf", "--config", path};
    TU_CHECK(load(&c, err, 5, a2) == 0, "%s", err);
    TU_CHECK(c.port == 9001 && c.ctx_size == 2048 && c.parallel == 3 && c.kv_memory == 64 << 20 &&
                 !strcmp(c.host, "0.0.0.0") && !strcmp(c.log_level, "debug"),
             "file values not applied");
    config_free(&c);

    tu_case("environment-over-file-and-flags-over-environment");
    setenv("CHATD_PORT", "9002", 1);
    setenv("CHATD_CTX_SIZE", "4096", 1);
    char *a3[] = {"serve", "--model", "m.gguf", "--config", path, "--ctx-size", "1024"};
    TU_CHECK(load(&c, err, 7, a3) == 0, "%s", err);
    TU_CHECK(c.port == 9002, "environment must win over the file: %d", c.port);
    TU_CHECK(c.ctx_size == 1024, "the flag must win over the environment: %lld",
             (long long)c.ctx_size);
    TU_CHECK(c.parallel == 3, "the file still applies where nothing overrides it");
    config_free(&c);
    unsetenv("CHATD_PORT");
    unsetenv("CHATD_CTX_SIZE");

    tu_case("model-from-environment");
    setenv("CHATD_MODEL", "/x/y.gguf", 1);
    char *a4[] = {"serve"};
    TU_CHECK(load(&c, err, 1, a4) == 0 && !strcmp(c.model, "/x/y.gguf"), "%s", err);
    config_free(&c);
    unsetenv("CHATD_MODEL");

    tu_case("invalid-values-refused");
    char *bad[][4] = {{"serve", "--model", "m", "--port=70000"},
                      {"serve", "--model", "m", "--parallel=0"},
                      {"serve", "--model", "m", "--kv-memory=lots"},
                      {"serve", "--model", "m", "--log-level=loud"},
                      {"serve", "--model", "m", "--no-such-flag"},
                      {"serve", "--model", "m", "--kv-type=q4"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        TU_CHECK(load(&c, err, 4, bad[i]) != 0 && err[0], "%s accepted", bad[i][3]);
        config_free(&c);
    }
    TU_CHECK(load(&c, err, 4, bad[0]) != 0 && strstr(err, "port") && strstr(err, "--port"),
             "the message names the setting and its source: %s", err);
    config_free(&c);
    setenv("CHATD_PARALLEL", "-1", 1);
    TU_CHECK(load(&c, err, 3, a1) != 0 && strstr(err, "CHATD_PARALLEL"), "%s", err);
    config_free(&c);
    unsetenv("CHATD_PARALLEL");

    tu_case("no-model-refused");
    char *a5[] = {"serve"};
    TU_CHECK(load(&c, err, 1, a5) != 0 && strstr(err, "model"), "%s", err);
    config_free(&c);
    unlink(path);
    return tu_finish();
}
