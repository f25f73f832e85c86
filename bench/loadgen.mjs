#!/usr/bin/env node
// loadgen.mjs - a load generator for any OpenAI-compatible server.
//
//   node bench/loadgen.mjs --url http://127.0.0.1:8080/v1 --model NAME [--clients 8]
//        [--duration 60] [--turns 4] [--max-tokens 64] [--api-key KEY] [--json]
//
// N clients each hold multi-turn conversations: every turn appends the assistant's
// streamed answer and a new user message, so prompts grow as they do in a chat product.
// Runs for a fixed time, then prints requests/s, generated tokens/s, time to first
// token and inter-token latency percentiles (p50/p95/p99), and errors. Tokens are counted
// from the server's usage (stream_options.include_usage), or as content chunks when a
// server sends no usage.

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
  return acc;
}, []));
if (args.help || !args.url) {
  console.log('usage: node bench/loadgen.mjs --url BASE_URL --model NAME [--clients 8] [--duration 60] [--turns 4] [--max-tokens 64] [--api-key KEY] [--json]');
  process.exit(args.help ? 0 : 2);
}
const url = String(args.url).replace(/\/$/, '');
const clients = Number(args.clients || 8);
const duration = Number(args.duration || 60) * 1000;
const turns = Number(args.turns || 4);
const maxTokens = Number(args['max-tokens'] || 64);
const headers = { 'Content-Type': 'application/json' };
if (args['api-key']) headers.Authorization = `Bearer ${args['api-key']}`;

const questions = ['Where is my order?', 'I want to return the blue jacket I bought last week.',
  'Can you check whether the refund went through?', 'What are your opening hours on Sunday?',
  'The package arrived damaged, what should I do?', 'Please change the delivery address.',
  'How long does shipping to Canada take?', 'Can I talk to a human?'];

const stats = { requests: 0, errors: 0, errorKinds: {}, tokens: 0, ttft: [], itl: [] };
const deadline = Date.now() + duration;

async function turn(messages) {
  const t0 = performance.now();
  const r = await fetch(`${url}/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ model: args.model, messages, max_tokens: maxTokens, stream: true,
      stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
  const decoder = new TextDecoder();
  let buf = '';
  let text = '';
  let last = null;
  let chunks = 0;
  let usage = null;
  for await (const part of r.body) {
    buf += decoder.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of ev.split('\n')) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const j = JSON.parse(line.slice(6));
        if (j.error) throw new Error(j.error.message || 'stream error');
        if (j.usage) usage = j.usage;
        const d = j.choices?.[0]?.delta?.content;
        if (d) {
          const now = performance.now();
          if (last === null) stats.ttft.push(now - t0);
          else stats.itl.push(now - last);
          last = now;
          text += d;
          chunks++;
        }
      }
    }
  }
  stats.tokens += usage ? usage.completion_tokens : chunks;
  stats.requests++;
  return text;
}

async function client(k) {
  while (Date.now() < deadline) {
    const messages = [{ role: 'system', content: 'You are a helpful customer-service assistant.' }];
    for (let t = 0; t < turns && Date.now() < deadline; t++) {
      messages.push({ role: 'user', content: questions[(k + t) % questions.length] });
      try {
        messages.push({ role: 'assistant', content: await turn(messages) });
      } catch (e) {
        stats.errors++;
        stats.errorKinds[e.message] = (stats.errorKinds[e.message] || 0) + 1;
        await new Promise((r) => setTimeout(r, 200));
        break;
      }
    }
  }
}

function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

const t0 = Date.now();
await Promise.all(Array.from({ length: clients }, (_, k) => client(k)));
const secs = (Date.now() - t0) / 1000;
const out = {
  clients, seconds: Number(secs.toFixed(1)), requests: stats.requests, errors: stats.errors,
  requests_per_s: Number((stats.requests / secs).toFixed(2)),
  generated_tokens_per_s: Number((stats.tokens / secs).toFixed(1)),
  ttft_ms: { p50: pct(stats.ttft, 50), p95: pct(stats.ttft, 95), p99: pct(stats.ttft, 99) },
  itl_ms: { p50: pct(stats.itl, 50), p95: pct(stats.itl, 95), p99: pct(stats.itl, 99) },
  error_kinds: stats.errorKinds,
};
if (args.json) {
  console.log(JSON.stringify(out));
} else {
  const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  console.log(`clients ${clients}, ${out.seconds}s: ${out.requests} requests (${out.requests_per_s}/s), ` +
    `${out.generated_tokens_per_s} generated tokens/s, ${out.errors} errors`);
  console.log(`time to first token ms  p50 ${f(out.ttft_ms.p50)}  p95 ${f(out.ttft_ms.p95)}  p99 ${f(out.ttft_ms.p99)}`);
  console.log(`inter-token latency ms  p50 ${f(out.itl_ms.p50)}  p95 ${f(out.itl_ms.p95)}  p99 ${f(out.itl_ms.p99)}`);
  if (out.errors) console.log('errors:', JSON.stringify(out.error_kinds));
}
