'use strict';
// node-redis 5 (npm `redis`) scenarios, run by test_clients.py once against
// redis-server and once through redvip's proxy; the two results must be equal.
//
//   features   every feature below, one result each (no restart)
//   crash      clients of every kind connected while the test kills Redis
//              (SIGKILL) and starts it again on the same port

const { createClient, RESP_TYPES } = require('redis');
const h = require('./harness');
const { note, outcome, plain, waitFor, sleep } = h;

// A connected client. `label` names it in the trace; every client must have
// an 'error' listener (node-redis throws the error otherwise).
async function open(label, extra = {}) {
    const client = createClient({ socket: { host: h.host, port: h.port, connectTimeout: 5000 }, ...extra });
    client.on('error', err => note(`${label} error: ${err.constructor.name}: ${err.message}`));
    client.on('reconnecting', () => note(`${label} reconnecting`));
    client.on('ready', () => note(`${label} ready`));
    await h.withTimeout(client.connect(), 10000, `connecting ${label}`);
    return client;
}

function close(...clients) {
    for (const client of clients) {
        try {
            client.destroy();
        } catch (err) {
            // already closed
        }
    }
}

const info = client => () => client.info('clients');

// HELLO's reply without what differs per connection (id).
function helloShape(reply) {
    const out = plain(reply);
    if (out && typeof out === 'object' && 'ok' in out && out.ok && typeof out.ok === 'object') {
        const ok = out.ok;
        if (Array.isArray(ok)) // RESP2: a flat array
            for (let i = 0; i + 1 < ok.length; i += 2)
                if (ok[i] === 'id') ok[i + 1] = 'ID';
        if (Array.isArray(ok.map)) // a Map (RESP3)
            for (const pair of ok.map)
                if (pair[0] === 'id') pair[1] = 'ID';
        if ('id' in ok)
            ok.id = 'ID';
    }
    return out;
}

async function basic(resp) {
    const c = await open(`basic${resp}`, { RESP: resp });
    try {
        await c.flushAll(); // each feature from an empty Redis
        const r = {};
        r.hello = helloShape(await outcome(c.sendCommand(['HELLO', String(resp)])));
        r.set = await outcome(c.set('s', 'v'));
        r.get = await outcome(c.get('s'));
        r.getMissing = await outcome(c.get('missing'));
        r.append = await outcome(c.append('s', 'w'));
        r.incr = await outcome(c.incr('n'));
        r.incrByFloat = await outcome(c.incrByFloat('n', 1.5));
        r.mSet = await outcome(c.mSet({ a: '1', b: '2' }));
        r.mGet = await outcome(c.mGet(['a', 'b', 'c']));
        r.hSet = await outcome(c.hSet('h', { f1: 'v1', f2: 'v2' }));
        r.hGetAll = await outcome(c.hGetAll('h'));
        r.hIncrBy = await outcome(c.hIncrBy('h', 'n', 3));
        r.lPush = await outcome(c.lPush('l', ['1', '2', '3']));
        r.lRange = await outcome(c.lRange('l', 0, -1));
        r.lPopCount = await outcome(c.lPopCount('l', 2));
        r.sAdd = await outcome(c.sAdd('set', ['x', 'y']));
        r.sMembers = await outcome(c.sMembers('set').then(m => [...m].sort()));
        r.sIsMember = await outcome(c.sIsMember('set', 'z'));
        r.zAdd = await outcome(c.zAdd('z', [{ score: 1, value: 'one' }, { score: 2.5, value: 'two' }]));
        r.zRangeWithScores = await outcome(c.zRangeWithScores('z', 0, -1));
        r.zScore = await outcome(c.zScore('z', 'two'));
        r.xAdd = await outcome(c.xAdd('x', '1-1', { k: 'v' }));
        r.xRange = await outcome(c.xRange('x', '-', '+'));
        r.eval = await outcome(c.eval("return {1, 'two', {3}}"));
        r.evalKeys = await outcome(c.eval("return redis.call('GET', KEYS[1])", { keys: ['s'] }));
        r.evalDouble = await outcome(c.eval('redis.setresp(3); return {double=3.5}'));
        r.unknownCommand = await outcome(c.sendCommand(['NOSUCHCOMMAND', 'x']));
        r.wrongArity = await outcome(c.sendCommand(['SET']));
        r.wrongType = await outcome(c.incr('h'));
        r.notInteger = await outcome(c.incr('s'));
        const bytes = Buffer.from([...Array(256).keys()]);
        r.binarySet = await outcome(c.set(Buffer.from('bin\x00key'), bytes));
        r.binaryGet = await outcome(c.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(Buffer.from('bin\x00key')));
        const big = 'x'.repeat(1 << 20) + 'end';
        r.bigSet = await outcome(c.set('big', big));
        r.bigGet = await outcome(c.get('big').then(v => ({ length: v.length, same: v === big })));
        r.selectTwo = await outcome(c.select(2));
        r.setInTwo = await outcome(c.set('in2', 'yes'));
        r.selectZero = await outcome(c.select(0));
        r.getInZero = await outcome(c.get('in2'));
        r.setName = await outcome(c.clientSetName('node-redis-test'));
        r.getName = await outcome(c.clientGetName());
        r.type = await outcome(c.type('z'));
        r.exists = await outcome(c.exists(['a', 'b', 'nope']));
        r.ttl = await outcome(c.ttl('s'));
        r.encoding = await outcome(c.objectEncoding('l'));
        r.ping = await outcome(c.ping());
        r.echo = await outcome(c.echo('hello'));
        return r;
    } finally {
        close(c);
    }
}

async function pipelines() {
    const c = await open('pipelines', { RESP: 3 });
    const other = await open('pipelines-other', { RESP: 3 });
    try {
        await c.flushAll(); // each feature from an empty Redis
        const r = {};
        // Commands issued in one tick go out as one pipeline.
        const incrs = await Promise.all(Array.from({ length: 500 }, () => c.incr('counter')));
        r.autoPipelined = { count: incrs.length, last: incrs[incrs.length - 1], ordered: incrs.every((v, i) => v === i + 1) };
        r.multi = await outcome(c.multi().set('m', '1').incr('m').get('m').hGetAll('nothing').exec());
        r.execAsPipeline = await outcome(c.multi().set('p', 'a').append('p', 'b').get('p').execAsPipeline());
        r.multiRuntimeError = await outcome(c.multi().set('str', 'x').incr('str').get('str').exec());
        r.multiQueueError = await outcome(c.multi().set('q', '1').addCommand(['SET']).exec());
        r.afterQueueError = await outcome(c.get('q'));
        // WATCH: another client's write aborts the transaction.
        r.watch = await outcome(c.watch('w'));
        await other.set('w', 'changed');
        r.watchedExec = await outcome(c.multi().set('w', 'mine').exec());
        r.watchedValue = await outcome(c.get('w'));
        // WATCH then no write: it commits.
        await c.watch('w2');
        r.unwatchedExec = await outcome(c.multi().set('w2', 'mine').get('w2').exec());
        r.discarded = await outcome(c.sendCommand(['DISCARD']));
        return r;
    } finally {
        close(c, other);
    }
}

async function pubsub(resp) {
    const c = await open(`pub${resp}`, { RESP: resp });
    const sub = c.duplicate();
    sub.on('error', err => note(`sub${resp} error: ${err.message}`));
    await h.withTimeout(sub.connect(), 10000, 'connecting the subscriber');
    try {
        await c.flushAll(); // each feature from an empty Redis
        const r = {};
        const got = [];
        r.subscribe = await outcome(sub.subscribe(['c1', 'c2'], (message, channel) => got.push(['message', channel, message])));
        r.pSubscribe = await outcome(sub.pSubscribe('p*', (message, channel) => got.push(['pmessage', channel, message])));
        r.sSubscribe = await outcome(sub.sSubscribe('shard', (message, channel) => got.push(['smessage', channel, message])));
        r.published = [
            await outcome(c.publish('c1', 'one')),
            await outcome(c.publish('c2', 'two')),
            await outcome(c.publish('px', 'three')),
            await outcome(c.publish('nobody', 'four')),
            await outcome(c.sPublish('shard', 'five')),
        ];
        r.allArrived = await waitFor(() => got.length >= 4, 5000);
        r.numSub = await outcome(c.pubSubNumSub(['c1', 'c2', 'px']));
        r.unsubscribe = await outcome(sub.unsubscribe('c1'));
        r.publishedAfterUnsubscribe = await outcome(c.publish('c1', 'six'));
        r.pUnsubscribe = await outcome(sub.pUnsubscribe('p*'));
        await c.publish('c2', 'seven');
        r.lastArrived = await waitFor(() => got.length >= 5, 5000);
        await sleep(100); // anything that should not have come
        r.messages = got;
        return r;
    } finally {
        close(sub, c);
    }
}

async function clientSideCache() {
    const c = await open('csc', { RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
    const other = await open('csc-other', { RESP: 3 });
    try {
        const r = {};
        const cache = c.clientSideCache;
        const stats = () => {
            const s = cache.stats();
            return { hits: s.hitCount, misses: s.missCount, size: cache.size() };
        };
        await other.set('csc:a', 'v1');
        await other.set('csc:b', 'b1');
        r.first = await outcome(c.get('csc:a'));
        r.second = await outcome(c.get('csc:a'));
        r.otherKey = await outcome(c.get('csc:b'));
        r.afterReads = stats();
        // Another client writes: Redis pushes an invalidation, the entry goes.
        await other.set('csc:a', 'v2');
        r.invalidatedByOther = await waitFor(() => cache.size() === 1, 5000);
        r.afterInvalidation = stats();
        r.third = await outcome(c.get('csc:a'));
        r.fourth = await outcome(c.get('csc:a'));
        // The client's own write invalidates too (no NOLOOP).
        await c.set('csc:b', 'b2');
        r.invalidatedByOwnWrite = await waitFor(() => cache.size() === 1, 5000);
        r.afterOwn = await outcome(c.get('csc:b'));
        // FLUSHALL: Redis invalidates everything (a null key).
        await other.flushAll();
        r.invalidatedByFlush = await waitFor(() => cache.size() === 0, 5000);
        r.afterFlush = await outcome(c.get('csc:a'));
        r.final = stats();
        return r;
    } finally {
        close(c, other);
    }
}

async function blocking() {
    const c = await open('blocking', { RESP: 3 });
    const b = c.duplicate();
    b.on('error', err => note(`blocked error: ${err.message}`));
    await h.withTimeout(b.connect(), 10000, 'connecting the blocked client');
    try {
        await c.flushAll(); // each feature from an empty Redis
        const r = {};
        r.timesOut = await outcome(b.blPop('empty', 0.2));
        let pending = b.blPop('bq', 0);
        r.blockedSeen = await h.waitBlocked(info(c), 1);
        await c.rPush('bq', 'x');
        r.blPop = await outcome(pending);
        pending = b.blMove('src', 'dst', 'LEFT', 'RIGHT', 0);
        await h.waitBlocked(info(c), 1);
        await c.rPush('src', 'moved');
        r.blMove = await outcome(pending);
        r.dst = await outcome(c.lRange('dst', 0, -1));
        pending = b.bzPopMin('zq', 0);
        await h.waitBlocked(info(c), 1);
        await c.zAdd('zq', { score: 3, value: 'm' });
        r.bzPopMin = await outcome(pending);
        // (node-redis 5 calls its RESP3 XREAD transform unstable: the raw reply)
        pending = b.sendCommand(['XREAD', 'BLOCK', '0', 'STREAMS', 'xs', '$']);
        await h.waitBlocked(info(c), 1);
        await c.xAdd('xs', '5-1', { f: 'v' });
        r.xRead = await outcome(pending);
        r.wait = await outcome(c.sendCommand(['WAIT', '0', '100']));
        return r;
    } finally {
        close(b, c);
    }
}

// Clients of every kind, then Redis is killed and started again by the test.
// Each must recover on its own, as node-redis does against Redis directly.
async function crash() {
    const r = { before: {}, down: {}, after: {} };
    const n3 = await open('n3', { RESP: 3 });
    const n2 = await open('n2', { RESP: 2 });
    const c3 = await open('c3', { RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
    const subs = { s3: await open('s3', { RESP: 3 }), s2: await open('s2', { RESP: 2 }) };
    const b3 = await open('b3', { RESP: 3 });
    const b2 = await open('b2', { RESP: 2 });
    const all = { n3, n2, c3, ...subs, b3, b2 };
    const got = { s3: [], s2: [] };
    for (const [name, sub] of Object.entries(subs))
        await sub.subscribe('ch', message => got[name].push(message));
    r.before.published = await outcome(n2.publish('ch', 'before'));
    r.before.received = await waitFor(() => got.s3.length && got.s2.length, 5000);
    await n3.set('k', 'old');
    r.before.cached = [await outcome(c3.get('k')), await outcome(c3.get('k')), c3.clientSideCache.size()];
    const blocked = { b3: h.tracked(b3.blPop('bq', 0)), b2: h.tracked(b2.blPop('bq', 0)) };
    r.before.blocked = await h.waitBlocked(info(n3), 2);
    h.emit({ event: 'ready' });

    await h.step('killed');
    // Every client sees its connection go.
    r.down.noticed = await waitFor(() => Object.values(all).every(client => !client.isReady), 5000);
    r.down.blockedOutcome = { b3: await h.settle(blocked.b3, 5000), b2: await h.settle(blocked.b2, 5000) };
    // Commands issued while Redis is down wait in the offline queue until
    // the client has reconnected, then run: they must not fail.
    const queued = { n3: h.tracked(n3.get('k')), n2: h.tracked(n2.get('k')), c3: h.tracked(c3.get('k')) };
    // Long enough for several reconnect attempts while Redis is down.
    await sleep(1500);
    r.down.queuedSettledWhileDown = Object.fromEntries(Object.entries(queued).map(([k, v]) => [k, v.settled ? v.result : 'waiting']));
    h.emit({ event: 'down' });

    await h.step('restarted');
    r.after.ready = await waitFor(() => Object.values(all).every(client => client.isReady), 15000);
    r.after.notReady = Object.entries(all).filter(([, client]) => !client.isReady).map(([name]) => name);
    r.after.queued = {};
    for (const [name, state] of Object.entries(queued))
        r.after.queued[name] = await h.settle(state, 15000);
    r.after.set = await outcome(n3.set('k', 'new'));
    r.after.getN2 = await outcome(n2.get('k'));
    // Subscribers get messages again (node-redis resubscribes on reconnect).
    let i = 0;
    r.after.subscribersBack = await waitFor(async () => {
        await n2.publish('ch', `after-${i++}`);
        return got.s3.some(m => m.startsWith('after-')) && got.s2.some(m => m.startsWith('after-'));
    }, 15000, 200);
    r.after.subscribersMissing = Object.keys(got).filter(name => !got[name].some(m => m.startsWith('after-')));
    // Blocked clients block again and get their element.
    const again = { b3: h.tracked(b3.blPop('bq2', 0)), b2: h.tracked(b2.blPop('bq2', 0)) };
    r.after.blockedAgain = await h.waitBlocked(info(n3), 2, 10000);
    await n3.rPush('bq2', ['x', 'y']);
    const popped = [await h.settle(again.b3, 5000), await h.settle(again.b2, 5000)];
    r.after.poppedAgain = popped.map(p => p.ok ? p.ok.element : p).sort();
    // Client-side caching again, with tracking set up on the new connection.
    r.after.cacheFirst = await outcome(c3.get('k'));
    r.after.cacheSecond = await outcome(c3.get('k'));
    r.after.cacheSize = c3.clientSideCache.size();
    await n3.set('k', 'newer');
    r.after.cacheInvalidated = await waitFor(() => c3.clientSideCache.size() === 0, 5000);
    r.after.cacheThird = await outcome(c3.get('k'));
    close(...Object.values(all));
    return r;
}

h.main({
    async features() {
        return h.features({
            basic3: () => basic(3),
            basic2: () => basic(2),
            pipelines,
            pubsub3: () => pubsub(3),
            pubsub2: () => pubsub(2),
            clientSideCache,
            blocking,
        });
    },
    crash,
});
