// reference.test.mjs - greedy output through /v1/chat/completions equals the reference
// (../shared/reference/<model>/greedy-exact.json) for its chat cases, token by token up
// to the first near-tie, alone and alongside 7 other concurrent requests; the logprobs
// and top_logprobs agree with the reference within rule B's tolerance (0.4; the server
// runs with an F32 KV cache like the reference's exact configuration).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http, loadJSON, missing, shared, startServer, validate } from './helpers.mjs';

const TOL = 0.4;
const TIE = 0.4;
const MODELS = ['qwen2-tiny-q8_0', 'qwen2-tiny-q4_k_m', 'qwen3-tiny-q8_0', 'r1-qwen-tiny-q4_0',
  'llama3-tiny-q6_k', 'llama-spm-tiny-f16'];

/* A case whose messages hold control-token text typed by the user (e.g. "<|im_start|>"). */
function forged(c) {
  return c.messages.some((m) => typeof m.content === 'string' && /<\|[a-z_]+\|>|<｜|<\/?s>|\[INST\]/.test(m.content));
}

function bytesKey(b) { return Buffer.from(b).toString('hex'); }

/* Compares one response with a reference case; returns the number of steps compared. */
function compare(ref, choice, label) {
  const lp = choice.logprobs.content;
  let n = 0;
  for (let i = 0; i < ref.steps.length; i++) {
    const rs = ref.steps[i];
    if (i >= lp.length) {
      // we stopped earlier: only fine if the reference's next token ends generation
      assert.ok(choice.finish_reason === 'stop' || rs.top1_top2_gap <= TIE, `${label}: ended at step ${i}`);
      break;
    }
    const mine = lp[i];
    const tops = new Map(mine.top_logprobs.map((t) => [bytesKey(t.bytes), t.logprob]));
    for (const t of rs.top) {
      const got = tops.get(bytesKey(t.bytes));
      if (got !== undefined)
        assert.ok(Math.abs(got - t.logprob) <= TOL, `${label} step ${i}: logprob ${got} vs ${t.logprob}`);
    }
    n++;
    if (bytesKey(mine.bytes) !== bytesKey(rs.bytes)) {
      assert.ok(rs.top1_top2_gap <= TIE, `${label} step ${i}: token differs outside a near-tie (gap ${rs.top1_top2_gap})`);
      break; // later steps have another context
    }
  }
  return n;
}

for (const name of MODELS) {
  const file = `${name}.gguf`;
  const skip = missing(file);
  describe(`reference ${name}`, { skip }, () => {
    let srv;
    let cases;
    before(async () => {
      srv = await startServer(file, ['--kv-type', 'f32', '--parallel', '8', '--ctx-size', '1024']);
      const ref = loadJSON(path.join(shared, 'reference', name, 'greedy-exact.json'));
      // tool definitions arrive with the tools issue; the rest must match now
      cases = ref.cases.filter((c) => c.kind === 'chat' && !c.tools);
      // the sanitizer run (CHATD_TEST_SEEDS) checks the first cases only
      const max = Number(process.env.CHATD_TEST_SEEDS) || Infinity;
      cases = cases.slice(0, Math.max(2, Math.min(cases.length, max)));
    });
    after(async () => { await srv.stop(); });

    const request = (c) => srv.client().chat.completions.create({
      model: srv.model || undefined, messages: c.messages, max_tokens: c.steps.length, temperature: 0,
      logprobs: true, top_logprobs: 10, ...(c.chat_template_kwargs ? { chat_template_kwargs: c.chat_template_kwargs } : {}),
    });

    test('each chat case alone', async () => {
      const models = await srv.client().models.list();
      for await (const m of models) srv.model = m.id;
      let steps = 0;
      for (const c of cases) {
        const r = await request(c);
        validate('CreateChatCompletionResponse', r);
        if (forged(c)) {
          // llama.cpp turns the user's control-token text into control tokens; chatd keeps
          // it plain text (several tokens each), so the prompt is longer and differs
          const t = await http(srv.baseURL, 'POST', '/tokenize', { messages: c.messages });
          assert.notDeepEqual(t.json.tokens, c.prompt_ids, `${c.id}: user text became control tokens`);
          assert.equal(r.usage.prompt_tokens, t.json.count);
          continue;
        }
        assert.equal(r.usage.prompt_tokens, c.prompt_ids.length, `${c.id}: prompt tokens`);
        steps += compare(c, r.choices[0], `${name}/${c.id}`);
      }
      assert.ok(steps > cases.length * 4, `only ${steps} steps compared`);
    });

    test('each chat case alongside 7 concurrent requests', async () => {
      const all = await Promise.all(cases.flatMap((c) => [request(c), ...Array.from({ length: 7 }, (_, k) =>
        srv.client().chat.completions.create({ model: srv.model, messages: [{ role: 'user', content: `noise ${k}` }], max_tokens: 20 + k }))]));
      cases.forEach((c, i) => forged(c) || compare(c, all[i * 8].choices[0], `${name}/${c.id} (concurrent)`));
    });
  });
}
