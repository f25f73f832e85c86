// helpers.mjs - what every server test needs: a chatd serve process on a free port
// with a model made from ../shared, the OpenAI SDK pointed at it, raw HTTP and SSE
// helpers, and validation against OpenAI's response schemas (../shared/spec).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const shared = process.env.CHATD_SHARED || path.resolve(repo, '..', 'shared');
export const chatd = process.env.CHATD_BIN || path.join(repo, 'build', 'chatd');
export const modelsDir = process.env.CHATD_MODELS_DIR || path.join(repo, 'build', 'models');

/* Returns the path of a test model, or null (with a skip reason) when it is missing. */
export function model(file) {
  const p = path.join(modelsDir, file);
  return fs.existsSync(p) ? p : null;
}

/* The reason to skip a test when the shared material or the binary is missing; with
 * CHATD_REQUIRE_SHARED set, a missing piece throws instead (CI must not skip). */
export function missing(...files) {
  const why = !fs.existsSync(chatd) ? `${chatd} not built`
    : !fs.existsSync(shared) ? `shared test material not found at ${shared}`
    : files.map((f) => (model(f) ? null : `test model ${f} not found in ${modelsDir}`)).find(Boolean);
  if (why && process.env.CHATD_REQUIRE_SHARED && process.env.CHATD_REQUIRE_SHARED !== '0')
    throw new Error(`CHATD_REQUIRE_SHARED is set: ${why}`);
  return why || false;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/* Starts chatd serve; resolves once /health answers 200. */
export async function startServer(modelFile, args = [], env = {}) {
  const port = await freePort();
  const proc = spawn(chatd, ['serve', '--model', model(modelFile), '--port', String(port),
    '--threads', '2', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  const baseURL = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`chatd serve exited: ${log}`);
    try {
      const r = await fetch(`${baseURL}/health`);
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`chatd did not get ready: ${log}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, baseURL, proc, exited,
    log: () => log,
    client: (opts = {}) => new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: opts.apiKey || 'none', maxRetries: 0, ...opts }),
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/* Raw HTTP: returns {status, headers, text, json}. */
export async function http(baseURL, method, urlPath, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!('Content-Type' in init.headers)) init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(baseURL + urlPath, init);
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

/* Reads an SSE response into its events: {data: [...parsed JSON], comments, done}. */
export async function sse(baseURL, urlPath, body, headers = {}) {
  const r = await fetch(baseURL + urlPath, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  const text = await r.text();
  const out = { status: r.status, headers: r.headers, raw: text, data: [], comments: 0, done: false, framingOk: true };
  for (const block of text.split('\n\n')) {
    if (!block) continue;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) { out.comments++; continue; }
      if (!line.startsWith('data: ')) { out.framingOk = false; continue; }
      const payload = line.slice(6);
      if (payload === '[DONE]') { out.done = true; continue; }
      out.data.push(JSON.parse(payload));
    }
  }
  if (!text.endsWith('\n\n')) out.framingOk = false;
  return out;
}

let ajv = null;
/* Validates obj against a schema of ../shared/spec/openai-schemas.json; throws with the errors. */
export function validate(defName, obj) {
  if (!ajv) {
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addFormat('unixtime', { type: 'number', validate: (x) => Number.isInteger(x) });
    ajv.addFormat('float', { type: 'number', validate: () => true });
    ajv.addKeyword('discriminator');
    ajv.addSchema(JSON.parse(fs.readFileSync(path.join(shared, 'spec', 'openai-schemas.json'), 'utf8')));
  }
  const v = ajv.getSchema(`https://conformance.local/openai-schemas.json#/$defs/${defName}`);
  if (!v) throw new Error(`no schema ${defName}`);
  if (!v(obj)) throw new Error(`${defName} invalid: ${JSON.stringify(v.errors, null, 1)}\n${JSON.stringify(obj)}`);
}

export function loadJSON(p) {
  return JSON.parse(fs.readFileSync(p, 'utf8'));
}

/* Spawns chatd serve on a free port without waiting for it to get ready (to watch it
 * load); stderr and stdout are kept apart. stop() sends SIGTERM, then SIGKILL after 10 s. */
export async function spawnServer(modelFile, args = [], env = {}) {
  const port = await freePort();
  const proc = spawn(chatd, ['serve', '--model', model(modelFile), '--port', String(port), ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  return {
    port, proc, exited, baseURL: `http://127.0.0.1:${port}`,
    client: (opts = {}) => new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: opts.apiKey || 'none', maxRetries: 0, ...opts }),
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
  };
}

/* Streams an SSE response line by line, noting when each line arrived (ms after the
 * request was sent): {status, headers, lines: [{t, line}], raw}. */
export async function sseTimed(baseURL, urlPath, body, headers = {}) {
  const t0 = Date.now();
  const r = await fetch(baseURL + urlPath, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  const out = { status: r.status, headers: r.headers, lines: [], raw: '' };
  const dec = new TextDecoder();
  let pending = '';
  for await (const chunk of r.body) {
    const s = dec.decode(chunk, { stream: true });
    out.raw += s;
    pending += s;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line) out.lines.push({ t: Date.now() - t0, line });
    }
  }
  if (pending) out.lines.push({ t: Date.now() - t0, line: pending });
  return out;
}

/* Waits until pred(text()) is true or ms pass; returns the last text. */
export async function waitFor(text, pred, ms = 5000) {
  const end = Date.now() + ms;
  while (!pred(text()) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return text();
}
