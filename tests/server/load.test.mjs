// load.test.mjs - many clients at once: 32 concurrent streams all complete and validate;
// a client that aborts its stream (or closes the socket while its request waits) has its
// KV blocks back in the pool; a full queue answers 503 with Retry-After; SIGTERM in the
// middle of streams ends them with a final chunk and the process exits 0.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { http, missing, sse, startServer, validate } from './helpers.mjs';

const MODEL = 'qwen2-tiny-q4_k_m.gguf';
const skip = missing(MODEL);
const body = (k, extra = {}) => ({ model: 'm', messages: [{ role: 'user', content: `client ${k} says hello` }],
  max_tokens: 24, stream: true, ...extra });

async function waitIdle(srv) {
  for (let i = 0; i < 200; i++) {
    const h = (await http(srv.baseURL, 'GET', '/health')).json;
    if (h.kv_blocks_used === 0 && h.requests_running === 0 && h.requests_queued === 0) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
  return (await http(srv.baseURL, 'GET', '/health')).json;
}

describe('load', { skip }, () => {
  test('32 concurrent streaming clients get complete, valid streams', async () => {
    const srv = await startServer(MODEL, ['--model-alias', 'm', '--parallel', '16', '--queue-size', '64']);
    try {
      const results = await Promise.all(Array.from({ length: 32 }, (_, k) => sse(srv.baseURL, '/v1/chat/completions', body(k))));
      for (const s of results) {
        assert.equal(s.status, 200);
        assert.ok(s.framingOk && s.done, s.raw.slice(-200));
        for (const ch of s.data) validate('CreateChatCompletionStreamResponse', ch);
        assert.ok(s.data.some((c) => c.choices[0]?.finish_reason));
      }
      const h = await waitIdle(srv);
      assert.equal(h.kv_blocks_used, 0);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });

  test('an aborted stream cancels its request and frees its KV blocks', async () => {
    const srv = await startServer(MODEL, ['--model-alias', 'm']);
    try {
      const ac = new AbortController();
      const r = await fetch(`${srv.baseURL}/v1/chat/completions`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ac.signal,
        body: JSON.stringify(body(0, { max_tokens: 400 })),
      });
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let seen = '';
      while (!seen.includes('"content":"') || !/"content":"[^"]/.test(seen)) {
        const { value, done } = await reader.read(); // until generation is running
        if (done) break;
        seen += dec.decode(value);
      }
      const during = (await http(srv.baseURL, 'GET', '/health')).json;
      assert.ok(during.kv_blocks_used > 0);
      ac.abort();
      const h = await waitIdle(srv);
      assert.equal(h.kv_blocks_used, 0);
      assert.ok(h.requests_cancelled >= 1);
      // a raw socket closed while a non-streamed request is pending
      await new Promise((resolve) => {
        const s = net.connect(srv.port, '127.0.0.1', () => {
          const payload = JSON.stringify({ ...body(1, { max_tokens: 400 }), stream: false });
          s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
          setTimeout(() => { s.destroy(); resolve(); }, 200);
        });
      });
      const h2 = await waitIdle(srv);
      assert.equal(h2.kv_blocks_used, 0);
      assert.ok(h2.requests_cancelled >= 2, JSON.stringify(h2));
    } finally {
      await srv.stop();
    }
  });

  test('a full queue answers 503 with Retry-After', async () => {
    const srv = await startServer(MODEL, ['--model-alias', 'm', '--parallel', '1', '--queue-size', '1']);
    try {
      const reqs = Array.from({ length: 6 }, (_, k) => http(srv.baseURL, 'POST', '/v1/chat/completions',
        { ...body(k, { max_tokens: 64 }), stream: false }));
      const res = await Promise.all(reqs);
      const busy = res.filter((r) => r.status === 503);
      assert.ok(busy.length >= 1, res.map((r) => r.status).join(','));
      validate('ErrorResponse', busy[0].json);
      assert.ok(busy[0].headers.get('retry-after'));
      assert.ok(res.some((r) => r.status === 200));
    } finally {
      await srv.stop();
    }
  });

  test('SIGTERM mid-stream: streams end cleanly and the server exits 0', async () => {
    const srv = await startServer(MODEL, ['--model-alias', 'm', '--shutdown-grace', '0.2']);
    const pending = Array.from({ length: 4 }, (_, k) => sse(srv.baseURL, '/v1/chat/completions', body(k, { max_tokens: 2000 })));
    await new Promise((r) => setTimeout(r, 300));
    srv.proc.kill('SIGTERM');
    const results = await Promise.all(pending);
    for (const s of results) {
      assert.ok(s.done, s.raw.slice(-300));
      assert.ok(s.data.some((c) => c.choices[0]?.finish_reason));
    }
    const { code } = await srv.exited;
    assert.equal(code, 0, srv.log());
  });
});
