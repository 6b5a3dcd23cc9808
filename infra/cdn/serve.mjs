// Runs infra/cdn/auto_format.js, the CloudFront Function the distribution runs, for the local CDN.
//
// Protocol (one JSON document per line, UTF-8, both ways; answers come in the order of the events):
//   node infra/cdn/serve.mjs [path/to/function.js]      (default: auto_format.js next to this file)
//   stdin:  a CloudFront Functions event, e.g.
//           {"version": "1.0", "context": {"eventType": "viewer-request"}, "viewer": {"ip": "127.0.0.1"},
//            "request": {"method": "GET", "uri": "/public/t/i/r/medium.auto.avif-webp-jpg",
//                        "querystring": {}, "headers": {"accept": {"value": "image/avif"}}, "cookies": {}}}
//           (for viewer-response, also "response": {"statusCode": 200, "headers": {...}}).
//   stdout: the handler's return value: the request to continue with, or a response object
//           ({"statusCode", "statusDescription", "headers", "body": {"encoding", "data"}}); or
//           {"error": "..."} when the line is not a JSON object or the handler throws or runs over 1 s.
//   Blank lines are skipped. The process exits 0 when stdin closes.
//
// The file is evaluated as a classic script in a fresh vm context with no require, process, module
// or timers, as CloudFront Functions run it: the file itself needs no export and no changes.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

export const DEFAULT_FUNCTION = fileURLToPath(new URL('./auto_format.js', import.meta.url));
const TIMEOUT_MS = 1000;

/** Load a CloudFront Function file; answers `run(event)`: the handler's result as plain JSON data
 * (a promise of it when the handler is async). */
export function loadFunction(path = DEFAULT_FUNCTION) {
    const source = readFileSync(path, 'utf8');
    const context = vm.createContext({ console });
    new vm.Script(source, { filename: path }).runInContext(context, { timeout: TIMEOUT_MS });
    if (typeof context.handler !== 'function') {
        throw new Error(`${path} defines no function handler(event)`);
    }
    const call = new vm.Script('handler(__event)', { filename: 'invoke' });
    return function run(event) {
        // Events cross into the context as JSON, so the handler sees plain objects of its own realm.
        context.__event = vm.runInContext(`(${JSON.stringify(event)})`, context);
        try {
            const result = call.runInContext(context, { timeout: TIMEOUT_MS });
            return result && typeof result.then === 'function' ? result.then(plain) : plain(result);
        } finally {
            delete context.__event;
        }
    };
}

function plain(value) {
    return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

/** One protocol line in, one line out (without the newline). */
export async function answer(run, line) {
    try {
        const event = JSON.parse(line);
        if (event === null || typeof event !== 'object' || Array.isArray(event)) {
            return JSON.stringify({ error: 'the event must be a JSON object' });
        }
        const result = await run(event); // cloudfront-js-2.0 handlers may be async
        return JSON.stringify(result);
    } catch (err) {
        return JSON.stringify({ error: String((err && err.message) || err) });
    }
}

async function main() {
    const run = loadFunction(process.argv[2] || DEFAULT_FUNCTION);
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
        if (line.trim() === '') {
            continue;
        }
        process.stdout.write((await answer(run, line)) + '\n');
    }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
    main().catch((err) => {
        process.stderr.write(`serve.mjs: ${(err && err.stack) || err}\n`);
        process.exit(1);
    });
}
