#!/usr/bin/env python3
"""test_cli.py - the chatd command line end to end, against the shared reference.

  test_cli.py CHATD_BINARY

- chatd run, greedy from BOS on stories260K, reproduces the reference's 256 tokens.
- chatd score (one batched forward, teacher forcing) passes ../shared/tools/compare_greedy.py
  with rule A (--float, against greedy-f64.json) and rule B (against greedy-exact.json).
- chatd info describes a model (--json) and refuses a truncated one with a message.
- chatd tokenize / detokenize agree with the reference tokenize.json.
Skips (exit 77) when the shared material is missing, unless CHATD_REQUIRE_SHARED is set.
"""
import json
import os
import subprocess
import sys
import tempfile

passed = failed = 0


def case(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL [%s] %s" % (name, detail), file=sys.stderr)


def run(*args, check=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def main():
    chatd = sys.argv[1]
    shared = os.environ.get("CHATD_SHARED") or os.environ.get("CHATD_SHARED_DEFAULT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
    models = os.environ.get("CHATD_MODELS_DIR", "")
    if not os.path.isdir(shared) or not os.path.isfile(os.path.join(models, "stories260K.gguf")):
        why = "shared test material or generated models not found (%s, %s)" % (shared, models)
        if os.environ.get("CHATD_REQUIRE_SHARED", "0") not in ("", "0"):
            print("FAIL (CHATD_REQUIRE_SHARED is set): " + why)
            return 1
        print("SKIP: " + why)
        return 77
    ref = lambda m, f: json.load(open(os.path.join(shared, "reference", m, f)))

    # chatd run from BOS
    g = ref("stories260K", "greedy.json")
    bos = next(c for c in g["cases"] if c["id"] == "bos_256")
    out = json.loads(run(chatd, "run", "-m", os.path.join(models, "stories260K.gguf"), "--prompt-ids", "1",
                         "-n", "256", "--temp", "0", "--ignore-eos", "--json").stdout)
    got = [s["id"] for s in out["steps"]]
    case("run/stories260K/greedy-from-bos-256", got == bos["tokens"],
         "first difference at %s" % next((i for i, (a, b) in enumerate(zip(got, bos["tokens"])) if a != b), len(got)))

    # chatd score through compare_greedy.py, rules A and B
    for model, rule, flags, ref_file, tol in [
            ("llama-spm-tiny-f32", "A", ["--float"], "greedy-f64.json", "0.1"),
            ("qwen2-tiny-q8_0", "A", ["--float"], "greedy-f64.json", "0.1"),
            ("qwen2-tiny-q8_0", "B", ["--kv-f32"], "greedy-exact.json", "0.4")]:
        r = ref(model, ref_file)
        cand = {"cases": []}
        for c in r["cases"][:3]:
            ids = c["prompt_ids"] + c["tokens"][:len(c["steps"]) - 1]
            o = json.loads(run(chatd, "score", "-m", os.path.join(models, model + ".gguf"), "--ids",
                               ",".join(map(str, ids)), "--top-logprobs", "10", "--json", *flags).stdout)
            first = len(c["prompt_ids"]) - 1
            steps = [{"top": s["top"]} for s in o["steps"][first:first + len(c["steps"])]]
            cand["cases"].append({"id": c["id"], "prompt_ids": c["prompt_ids"], "steps": steps})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cand, f)
        ref_path = os.path.join(shared, "reference", model, ref_file)
        trimmed = {"cases": [c for c in r["cases"][:3]]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f2:
            json.dump(trimmed, f2)
        p = run(sys.executable, os.path.join(shared, "tools", "compare_greedy.py"), f2.name, f.name,
                "--tol", tol, "--tie", tol, "--quiet", check=False)
        case("score/%s/rule-%s" % (model, rule), p.returncode == 0, p.stdout + p.stderr)
        os.unlink(f.name)
        os.unlink(f2.name)

    # chatd info
    info = json.loads(run(chatd, "info", "--json", os.path.join(models, "qwen3-tiny-q8_0.gguf")).stdout)
    case("info/qwen3", info["architecture"] == "qwen3" and info["layers"] == 2 and info["chat_template"], str(info)[:200])
    with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
        f.write(open(os.path.join(models, "stories260K.gguf"), "rb").read()[:100000])
    p = run(chatd, "info", f.name, check=False)
    case("info/truncated-refused", p.returncode != 0 and "past the end" in p.stderr, p.stderr)
    os.unlink(f.name)

    # tokenize / detokenize
    t = ref("qwen2-tiny-q8_0", "tokenize.json")
    c = t["cases"][3]
    ids = json.loads(run(chatd, "tokenize", "-m", os.path.join(models, "qwen2-tiny-q8_0.gguf"), c["text"]).stdout)
    case("tokenize/qwen2", ids == c["ids_no_parse_special"], "%s vs %s" % (ids, c["ids_no_parse_special"]))
    text = run(chatd, "detokenize", "-m", os.path.join(models, "qwen2-tiny-q8_0.gguf"), *map(str, ids)).stdout
    case("detokenize/qwen2", text.rstrip("\n") == c["text"], repr(text))

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
