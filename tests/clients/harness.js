'use strict';
// What every scenario script shares: its arguments, a hard timeout, JSON
// lines on stdout (events while it runs, the result last), lines from the
// test on stdin (steps of a crash scenario), bounded waits, and values and
// errors turned into plain JSON so two runs compare with ==.
//
//   node <script> <scenario> '{"port": 6379, "hardTimeoutMs": 60000}'

const readline = require('node:readline');

const [scenario, optionsText] = process.argv.slice(2);
const options = JSON.parse(optionsText || '{}');
const port = Number(options.port);
const host = options.host || '127.0.0.1';

function emit(object) {
    process.stdout.write(JSON.stringify(object) + '\n');
}

// Whatever happens (a client that never recovers, a promise that never
// settles), the script ends: the test reads a line saying why.
const hardTimeoutMs = Number(options.hardTimeoutMs || 60000);
const hardTimer = setTimeout(() => {
    emit({ fatal: `hard timeout after ${hardTimeoutMs} ms`, trace: trace.slice(-50) });
    process.exit(3);
}, hardTimeoutMs);

// What happened, in order, for the failure message (not compared).
const trace = [];
function note(text) {
    trace.push(`${(performance.now() / 1000).toFixed(3)} ${text}`);
}

// Steps sent by the test on stdin, one a line.
const lines = [];
const lineWaiters = [];
const input = readline.createInterface({ input: process.stdin });
input.on('line', line => {
    const waiter = lineWaiters.shift();
    if (waiter)
        waiter(line.trim());
    else
        lines.push(line.trim());
});

async function step(expected, timeoutMs = 30000) {
    const line = lines.length ? lines.shift() : await withTimeout(
        new Promise(resolve => lineWaiters.push(resolve)), timeoutMs, `waiting for "${expected}" on stdin`);
    if (line !== expected)
        throw new Error(`expected "${expected}" on stdin, got "${line}"`);
    note(`step ${expected}`);
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

class WaitTimeout extends Error {}

function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new WaitTimeout(`timed out after ${ms} ms ${what}`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

// Polls predicate() every intervalMs; true once it holds, false after timeoutMs.
async function waitFor(predicate, timeoutMs, intervalMs = 20) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        try {
            if (await predicate())
                return true;
        } catch (err) {
            // not yet
        }
        if (performance.now() >= deadline)
            return false;
        await sleep(intervalMs);
    }
}

// A reply as plain JSON: Buffers as {hex}, Maps as objects, Sets as sorted
// arrays, bigints and non-finite numbers as strings, errors as {error}.
function plain(value) {
    if (value === undefined)
        return { undefined: true };
    if (value === null || typeof value === 'string' || typeof value === 'boolean')
        return value;
    if (typeof value === 'number')
        return Number.isFinite(value) ? value : { number: String(value) };
    if (typeof value === 'bigint')
        return { bigint: value.toString() };
    if (Buffer.isBuffer(value))
        return { hex: value.toString('hex') };
    if (value instanceof Error)
        return errorOf(value);
    if (Array.isArray(value))
        return value.map(plain);
    if (value instanceof Map)
        return { map: [...value.entries()].map(([k, v]) => [plain(k), plain(v)]) };
    if (value instanceof Set)
        return { set: [...value].map(plain).sort((a, b) => JSON.stringify(a) < JSON.stringify(b) ? -1 : 1) };
    if (typeof value === 'object') {
        const out = {};
        for (const key of Object.keys(value))
            out[key] = plain(value[key]);
        return out;
    }
    return { other: String(value) };
}

// An error as its class and message (what an application can branch on),
// with the per-command replies of a failed transaction or pipeline.
function errorOf(err) {
    const out = { error: err.constructor ? err.constructor.name : 'unknown', message: String(err.message) };
    if (Array.isArray(err.replies))
        out.replies = err.replies.map(plain);
    if (Array.isArray(err.errorIndexes))
        out.errorIndexes = err.errorIndexes;
    if (err.previousErrors)
        out.previousErrors = err.previousErrors.map(errorOf);
    return out;
}

// Settles promise into {ok: value} or its error, within timeoutMs.
async function outcome(promise, timeoutMs = 10000) {
    try {
        return { ok: plain(await withTimeout(Promise.resolve(promise), timeoutMs, 'for a reply')) };
    } catch (err) {
        if (err instanceof WaitTimeout)
            return { pending: `no reply within ${timeoutMs} ms` };
        return errorOf(err);
    }
}

// Like outcome(), for a promise that has been running for a while: what it
// settled to, or still pending.
function tracked(promise) {
    const state = { settled: false, result: { pending: 'not settled' } };
    state.promise = Promise.resolve(promise).then(
        value => { state.settled = true; state.result = { ok: plain(value) }; },
        err => { state.settled = true; state.result = errorOf(err); });
    return state;
}

async function settle(state, timeoutMs) {
    await Promise.race([state.promise, sleep(timeoutMs)]);
    return state.result;
}

// Blocked clients as Redis counts them (INFO clients), through `infoClients`
// (a function returning INFO's text): true once at least `count` are blocked.
async function waitBlocked(info, count, timeoutMs = 5000) {
    return waitFor(async () => {
        const text = await info();
        const match = /blocked_clients:(\d+)/.exec(text);
        return match && Number(match[1]) >= count;
    }, timeoutMs);
}

// Runs the scenario named on the command line from `scenarios`; prints
// {"result": ...} and exits 0, or {"fatal": ...} and exits 1.
function main(scenarios) {
    const run = scenarios[scenario];
    if (!run) {
        emit({ fatal: `no scenario "${scenario}"; have ${Object.keys(scenarios).join(', ')}` });
        process.exit(2);
    }
    run().then(result => {
        emit({ result, trace });
        clearTimeout(hardTimer);
        // Clients still reconnecting (a failed run) must not keep us alive.
        setTimeout(() => process.exit(0), 200).unref();
        input.close();
    }, err => {
        emit({ fatal: `${err.constructor.name}: ${err.message}`, stack: err.stack, trace });
        process.exit(1);
    });
}

// Runs each named feature (an async function) in turn, each bounded to 30 s:
// {name: its result, or {failed: error}}.
async function features(parts) {
    const result = {};
    for (const [name, run] of Object.entries(parts)) {
        note(`feature ${name}`);
        try {
            result[name] = await withTimeout(run(), 30000, `feature ${name}`);
        } catch (err) {
            result[name] = { failed: errorOf(err) };
        }
    }
    return result;
}

module.exports = {
    features,
    scenario, options, port, host, emit, note, step, sleep, withTimeout, waitFor, plain, errorOf, outcome,
    tracked, settle, waitBlocked, main, WaitTimeout,
};
