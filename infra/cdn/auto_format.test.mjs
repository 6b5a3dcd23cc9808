// node --test infra/cdn/  (tests/unit/test_template_cdn.py runs this under pytest)
// auto_format.js is loaded as serve.mjs loads it for the local CDN: a classic script in a vm context.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { DEFAULT_FUNCTION, answer, loadFunction } from './serve.mjs';

const run = loadFunction();
const SERVE = new URL('./serve.mjs', import.meta.url).pathname;

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const SAFARI_17 = 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5';
const SAFARI_14 = 'image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5';
const FIREFOX = 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5';
const DIR = '/public/t1/img_x/ab12';

function viewerRequest(uri, accept, extraHeaders = {}) {
    const headers = { host: { value: 'd111111abcdef8.cloudfront.net' }, ...extraHeaders };
    if (accept !== undefined) {
        headers.accept = { value: accept };
    }
    return {
        version: '1.0',
        context: { eventType: 'viewer-request', distributionId: 'EDFDVBD6EXAMPLE', requestId: 'r1' },
        viewer: { ip: '198.51.100.11' },
        request: { method: 'GET', uri, querystring: {}, headers, cookies: {} },
    };
}

function viewerResponse(request, responseHeaders = {}) {
    return {
        version: '1.0',
        context: { eventType: 'viewer-response' },
        viewer: { ip: '198.51.100.11' },
        request,
        response: { statusCode: 200, statusDescription: 'OK', headers: responseHeaders, cookies: {} },
    };
}

function pick(uri, accept) {
    const out = run(viewerRequest(uri, accept));
    assert.equal(out.statusCode, undefined, `expected a request, got ${JSON.stringify(out)}`);
    return { uri: out.uri, format: out.headers['x-imgdrop-format'] && out.headers['x-imgdrop-format'].value };
}

test('the file is a plain CloudFront Functions script: no modules, no require, small', () => {
    const source = readFileSync(DEFAULT_FUNCTION, 'utf8');
    assert.match(source, /^function handler\(event\) \{$/m);
    const code = source.replace(/^\s*\/\/.*$/gm, '');
    assert.doesNotMatch(code, /\b(require|import|export|module\.exports|const|let|async|await)\b|=>/);
    assert.ok(Buffer.byteLength(source) < 10 * 1024, 'CloudFront Functions take at most 10 KB');
});

test("Chrome's Accept gets AVIF", () => {
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, CHROME), { uri: `${DIR}/medium.avif`, format: 'avif' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, FIREFOX), { uri: `${DIR}/medium.avif`, format: 'avif' });
});

test("Safari's Accept: AVIF where it names it, else the fallback (image/* alone is no WebP)", () => {
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, SAFARI_17), { uri: `${DIR}/medium.avif`, format: 'avif' });
    assert.deepEqual(pick(`${DIR}/medium.auto.webp-png`, SAFARI_17), { uri: `${DIR}/medium.webp`, format: 'webp' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, SAFARI_14), { uri: `${DIR}/medium.jpg`, format: 'fallback' });
});

test('q=0 refuses a format; WebP is next, then the fallback', () => {
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'image/avif;q=0,image/webp,*/*;q=0.8'),
        { uri: `${DIR}/medium.webp`, format: 'webp' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'image/webp;q=0'), { uri: `${DIR}/medium.jpg`, format: 'fallback' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'image/avif;q=0.000, image/webp ; q=0.5'),
        { uri: `${DIR}/medium.webp`, format: 'webp' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'image/avif;q=nonsense'), { uri: `${DIR}/medium.jpg`, format: 'fallback' });
});

test('a wildcard alone, or no Accept at all, gets the fallback', () => {
    for (const accept of ['*/*', 'image/*', 'image/*,*/*;q=0.8', '', undefined]) {
        assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, accept), { uri: `${DIR}/medium.jpg`, format: 'fallback' }, String(accept));
    }
});

test('a list without AVIF, and animated webp-gif', () => {
    assert.deepEqual(pick(`${DIR}/large.auto.webp-jpg`, CHROME), { uri: `${DIR}/large.webp`, format: 'webp' });
    assert.deepEqual(pick(`${DIR}/large.auto.webp-png`, 'image/png'), { uri: `${DIR}/large.png`, format: 'fallback' });
    assert.deepEqual(pick(`${DIR}/anim.auto.webp-gif`, CHROME), { uri: `${DIR}/anim.webp`, format: 'webp' });
    assert.deepEqual(pick(`${DIR}/anim.auto.webp-gif`, SAFARI_14), { uri: `${DIR}/anim.gif`, format: 'fallback' });
});

test('jpeg in a list means the .jpg object', () => {
    assert.deepEqual(pick(`${DIR}/medium.auto.webp-jpeg`, '*/*'), { uri: `${DIR}/medium.jpg`, format: 'fallback' });
});

test('a single AVIF or WebP format is its own fallback', () => {
    assert.deepEqual(pick(`${DIR}/thumb.auto.webp`, '*/*'), { uri: `${DIR}/thumb.webp`, format: 'fallback' });
    assert.deepEqual(pick(`${DIR}/thumb.auto.avif`, CHROME), { uri: `${DIR}/thumb.avif`, format: 'fallback' });
});

test('media types are case-insensitive in Accept', () => {
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'IMAGE/AVIF, Image/WebP;Q=0.9'),
        { uri: `${DIR}/medium.avif`, format: 'avif' });
    assert.deepEqual(pick(`${DIR}/medium.auto.avif-webp-jpg`, 'Image/Avif;Q=0, IMAGE/WEBP'),
        { uri: `${DIR}/medium.webp`, format: 'webp' });
});

test('several Accept headers (multiValue) count together', () => {
    const event = viewerRequest(`${DIR}/medium.auto.avif-webp-jpg`, undefined, {
        accept: { value: 'text/html', multiValue: [{ value: 'text/html' }, { value: 'image/webp' }] },
    });
    assert.equal(run(event).uri, `${DIR}/medium.webp`);
});

test('a malformed format list answers 400, never an object', () => {
    const lists = ['avif-webp-bmp', 'avif--jpg', 'avif-webp-jpg-', '-jpg', 'jpg-jpeg', 'webp-webp', 'avif-webp',
        'jpg-avif', 'AVIF-WEBP-JPG', 'Jpg', 'avif-webp-jpg-png-gif-jpg'];
    for (const list of lists) {
        const out = run(viewerRequest(`${DIR}/medium.auto.${list}`, CHROME));
        assert.equal(out.statusCode, 400, list);
        assert.equal(out.headers['cache-control'].value, 'no-store');
        assert.equal(out.body.encoding, 'text');
    }
});

test('other URIs pass unchanged, and a format header a viewer sends is dropped', () => {
    for (const uri of [`${DIR}/medium.jpg`, `${DIR}/original.png`, '/images/t1/img_x/ab12/medium.webp', '/',
        '/medium.auto.avif-webp-jpg', `${DIR}/.auto/x.jpg`, `${DIR}/medium.auto.avif-webp-jpg/x`]) {
        const event = viewerRequest(uri, CHROME, { 'x-imgdrop-format': { value: 'avif' } });
        const out = run(event);
        delete event.request.headers['x-imgdrop-format'];
        assert.deepEqual(out, event.request, uri);
    }
});

test('signed query strings stay as they are', () => {
    const event = viewerRequest('/images/t1/img_x/ab12/medium.auto.avif-webp-jpg', CHROME);
    event.request.querystring = { Expires: { value: '1700000000' }, Signature: { value: 'abc~' }, 'Key-Pair-Id': { value: 'K2JCJMDEHXQW5F' } };
    const out = run(event);
    assert.equal(out.uri, '/images/t1/img_x/ab12/medium.avif');
    assert.deepEqual(out.querystring, event.request.querystring);
});

test('viewer-response adds Vary: Accept to answers of auto requests, seen before or after the rewrite', () => {
    const original = viewerRequest(`${DIR}/medium.auto.avif-webp-jpg`, CHROME).request;
    const rewritten = run(viewerRequest(`${DIR}/medium.auto.avif-webp-jpg`, CHROME));
    for (const request of [original, rewritten]) {
        const out = run(viewerResponse(request, { 'content-type': { value: 'image/avif' } }));
        assert.equal(out.statusCode, 200);
        assert.deepEqual(out.headers.vary, { value: 'Accept' });
        assert.deepEqual(out.headers['content-type'], { value: 'image/avif' });
    }
});

test('viewer-response merges with an existing Vary and leaves other answers alone', () => {
    const auto = viewerRequest(`${DIR}/medium.auto.avif-webp-jpg`, CHROME).request;
    assert.equal(run(viewerResponse(auto, { vary: { value: 'Origin' } })).headers.vary.value, 'Origin, Accept');
    assert.equal(run(viewerResponse(auto, { vary: { value: 'Origin, accept' } })).headers.vary.value, 'Origin, accept');
    const plainRequest = viewerRequest(`${DIR}/medium.jpg`, CHROME).request;
    const out = run(viewerResponse(plainRequest, { 'content-type': { value: 'image/jpeg' } }));
    assert.equal(out.headers.vary, undefined);
});

test('an event without context is a viewer request', () => {
    const event = viewerRequest(`${DIR}/medium.auto.webp-jpg`, 'image/webp');
    delete event.context;
    assert.equal(run(event).uri, `${DIR}/medium.webp`);
});

test('answer(): one protocol line in, one JSON line out', async () => {
    const ok = JSON.parse(await answer(run, JSON.stringify(viewerRequest(`${DIR}/medium.auto.avif-webp-jpg`, '*/*'))));
    assert.equal(ok.uri, `${DIR}/medium.jpg`);
    assert.match(JSON.parse(await answer(run, '{not json')).error, /JSON/);
    assert.match(JSON.parse(await answer(run, '[1]')).error, /object/);
    assert.ok('error' in JSON.parse(await answer(run, '{"request": null}')));
});

test('serve.mjs round trip: events in on stdin, one JSON line each on stdout', async () => {
    const child = spawn(process.execPath, [SERVE], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const request = viewerRequest(`${DIR}/anim.auto.webp-gif`, CHROME);
    child.stdin.write(JSON.stringify(request) + '\n');
    child.stdin.write('\n');
    child.stdin.write('garbage\n');
    child.stdin.write(JSON.stringify(viewerRequest(`${DIR}/anim.auto.bmp`, CHROME)) + '\n');
    child.stdin.write(JSON.stringify(viewerResponse(request.request, {})) + '\n');
    child.stdin.end();
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
    assert.equal(lines.length, 4);
    assert.equal(lines[0].uri, `${DIR}/anim.webp`);
    assert.equal(lines[0].headers['x-imgdrop-format'].value, 'webp');
    assert.ok(lines[1].error);
    assert.equal(lines[2].statusCode, 400);
    assert.equal(lines[3].headers.vary.value, 'Accept');
});
