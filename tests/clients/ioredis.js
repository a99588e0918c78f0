'use strict';
// ioredis 5 scenarios, run by test_clients.py once against redis-server and
// once through redvip's proxy; the two results must be equal.
//
//   features   every feature below, one result each (no restart)
//   crash      clients of every kind connected while the test kills Redis
//              (SIGKILL) and starts it again on the same port

const Redis = require('ioredis');
const h = require('./harness');
const { note, outcome, waitFor, sleep } = h;

async function open(label, extra = {}) {
    const client = new Redis({ host: h.host, port: h.port, lazyConnect: true, connectTimeout: 5000, ...extra });
    client.on('error', err => note(`${label} error: ${err.constructor.name}: ${err.message}`));
    client.on('reconnecting', delay => note(`${label} reconnecting in ${delay} ms`));
    client.on('ready', () => note(`${label} ready`));
    client.on('close', () => note(`${label} close`));
    await h.withTimeout(client.connect(), 10000, `connecting ${label}`);
    return client;
}

function close(...clients) {
    for (const client of clients)
        client.disconnect(false);
}

const info = client => () => client.info('clients');

async function basic() {
    const c = await open('basic');
    try {
        await c.flushall();
        const r = {};
        r.set = await outcome(c.set('s', 'v'));
        r.setNxGet = await outcome(c.set('s', 'w', 'NX', 'GET'));
        r.get = await outcome(c.get('s'));
        r.getMissing = await outcome(c.get('missing'));
        r.incr = await outcome(c.incr('n'));
        r.incrbyfloat = await outcome(c.incrbyfloat('n', 1.5));
        r.mset = await outcome(c.mset({ a: '1', b: '2' }));
        r.mget = await outcome(c.mget('a', 'b', 'c'));
        r.hset = await outcome(c.hset('h', { f1: 'v1', f2: 'v2' }));
        r.hgetall = await outcome(c.hgetall('h'));
        r.lpush = await outcome(c.lpush('l', '1', '2', '3'));
        r.lrange = await outcome(c.lrange('l', 0, -1));
        r.zadd = await outcome(c.zadd('z', 1, 'one', 2.5, 'two'));
        r.zrange = await outcome(c.zrange('z', 0, -1, 'WITHSCORES'));
        r.xadd = await outcome(c.xadd('x', '1-1', 'k', 'v'));
        r.xrange = await outcome(c.xrange('x', '-', '+'));
        r.eval = await outcome(c.eval("return {1, 'two', {3}}", 0));
        r.evalError = await outcome(c.eval("return redis.error_reply('MYERR custom')", 0));
        r.unknownCommand = await outcome(c.call('NOSUCHCOMMAND', 'x'));
        r.wrongArity = await outcome(c.call('SET'));
        r.wrongType = await outcome(c.incr('h'));
        const bytes = Buffer.from([...Array(256).keys()]);
        r.binarySet = await outcome(c.set(Buffer.from('bin\x00key'), bytes));
        r.binaryGet = await outcome(c.getBuffer(Buffer.from('bin\x00key')));
        const big = 'y'.repeat(1 << 20) + 'end';
        r.bigSet = await outcome(c.set('big', big));
        r.bigGet = await outcome(c.get('big').then(v => ({ length: v.length, same: v === big })));
        r.select = await outcome(c.select(3));
        r.setIn3 = await outcome(c.set('in3', 'yes'));
        r.select0 = await outcome(c.select(0));
        r.getIn0 = await outcome(c.get('in3'));
        r.setname = await outcome(c.client('SETNAME', 'ioredis-test'));
        r.getname = await outcome(c.client('GETNAME'));
        r.scan = await outcome(c.scan(0, 'MATCH', 'nothing*', 'COUNT', 1000));
        return r;
    } finally {
        close(c);
    }
}

async function autoPipelining() {
    const c = await open('auto', { enableAutoPipelining: true });
    try {
        await c.flushall();
        const r = {};
        // Commands of one tick go out in one write, answered in order.
        const many = await Promise.all([
            ...Array.from({ length: 300 }, (_, i) => c.set(`k${i}`, `v${i}`)),
            ...Array.from({ length: 300 }, (_, i) => c.get(`k${i}`)),
            c.incr('counter'), c.get('nothing'),
        ]);
        r.sets = many.slice(0, 300).every(v => v === 'OK');
        r.gets = many.slice(300, 600).every((v, i) => v === `v${i}`);
        r.tail = await outcome(Promise.resolve(many.slice(600)));
        r.errorInBatch = await outcome(Promise.allSettled([c.get('k1'), c.incr('k1'), c.get('k2')]).then(
            all => all.map(s => s.status === 'fulfilled' ? s.value : h.errorOf(s.reason))));
        return r;
    } finally {
        close(c);
    }
}

async function transactions() {
    const c = await open('tx');
    const other = await open('tx-other');
    try {
        await c.flushall();
        const r = {};
        r.pipeline = await outcome(c.pipeline().set('p', '1').incr('p').get('p').hgetall('none').exec());
        r.pipelineWithError = await outcome(c.pipeline().set('str', 'x').incr('str').get('str').exec());
        r.multi = await outcome(c.multi().set('m', '1').incr('m').get('m').exec());
        r.multiRuntimeError = await outcome(c.multi().set('s2', 'x').incr('s2').exec());
        r.multiQueueError = await outcome(c.multi().set('q', '1').call('SET').exec());
        r.afterQueueError = await outcome(c.get('q'));
        r.watch = await outcome(c.watch('w'));
        await other.set('w', 'changed');
        r.watchedExec = await outcome(c.multi().set('w', 'mine').exec());
        r.watchedValue = await outcome(c.get('w'));
        await c.watch('w2');
        r.unwatchedExec = await outcome(c.multi().set('w2', 'mine').get('w2').exec());
        r.multiOnly = await outcome(c.multi({ pipeline: false }));
        r.queued = await outcome(c.set('mo', '1'));
        r.execOnly = await outcome(c.exec());
        return r;
    } finally {
        close(c, other);
    }
}

async function pubsub() {
    const c = await open('pub');
    const sub = await open('sub');
    try {
        await c.flushall();
        const r = {};
        const got = [];
        sub.on('message', (channel, message) => got.push(['message', channel, message]));
        sub.on('pmessage', (pattern, channel, message) => got.push(['pmessage', pattern, channel, message]));
        sub.on('smessage', (channel, message) => got.push(['smessage', channel, message]));
        r.subscribe = await outcome(sub.subscribe('c1', 'c2'));
        r.psubscribe = await outcome(sub.psubscribe('p*'));
        r.ssubscribe = await outcome(sub.ssubscribe('shard'));
        r.commandWhileSubscribed = await outcome(sub.get('c1'));
        r.pingWhileSubscribed = await outcome(sub.ping());
        r.published = [
            await outcome(c.publish('c1', 'one')),
            await outcome(c.publish('c2', 'two')),
            await outcome(c.publish('px', 'three')),
            await outcome(c.publish('nobody', 'four')),
            await outcome(c.spublish('shard', 'five')),
        ];
        r.allArrived = await waitFor(() => got.length >= 4, 5000);
        r.numsub = await outcome(c.pubsub('NUMSUB', 'c1', 'c2', 'px'));
        r.unsubscribe = await outcome(sub.unsubscribe('c1'));
        r.publishedAfterUnsubscribe = await outcome(c.publish('c1', 'six'));
        r.punsubscribe = await outcome(sub.punsubscribe('p*'));
        await c.publish('c2', 'seven');
        r.lastArrived = await waitFor(() => got.length >= 5, 5000);
        await sleep(100);
        r.messages = got;
        // QUIT from subscribed mode: +OK, then the connection closes.
        r.quit = await outcome(sub.quit());
        r.closed = await waitFor(() => sub.status === 'end', 5000);
        return r;
    } finally {
        close(sub, c);
    }
}

async function blocking() {
    const c = await open('blocking');
    const b = await open('blocked');
    try {
        await c.flushall();
        const r = {};
        r.timesOut = await outcome(b.blpop('empty', 0.2));
        let pending = b.blpop('bq', 0);
        r.blockedSeen = await h.waitBlocked(info(c), 1);
        await c.rpush('bq', 'x');
        r.blpop = await outcome(pending);
        pending = b.blmove('src', 'dst', 'LEFT', 'RIGHT', 0);
        await h.waitBlocked(info(c), 1);
        await c.rpush('src', 'moved');
        r.blmove = await outcome(pending);
        pending = b.bzpopmin('zq', 0);
        await h.waitBlocked(info(c), 1);
        await c.zadd('zq', 3, 'm');
        r.bzpopmin = await outcome(pending);
        pending = b.xread('BLOCK', 0, 'STREAMS', 'xs', '$');
        await h.waitBlocked(info(c), 1);
        await c.xadd('xs', '5-1', 'f', 'v');
        r.xread = await outcome(pending);
        return r;
    } finally {
        close(b, c);
    }
}

// Clients of every kind, then Redis is killed and started again by the test.
// ioredis reconnects (retryStrategy), resubscribes (autoResubscribe), re-sends
// the commands left unanswered (autoResendUnfulfilledCommands) and holds new
// ones in its offline queue meanwhile.
async function crash() {
    const r = { before: {}, down: {}, after: {} };
    const n = await open('n');
    const ap = await open('ap', { enableAutoPipelining: true });
    const s = await open('s');
    const b = await open('b');
    const all = { n, ap, s, b };
    const got = [];
    s.on('message', (channel, message) => got.push(['message', message]));
    s.on('pmessage', (pattern, channel, message) => got.push(['pmessage', message]));
    await s.subscribe('ch');
    await s.psubscribe('c*');
    r.before.published = await outcome(n.publish('ch', 'before'));
    r.before.received = await waitFor(() => got.length >= 2, 5000);
    await n.set('k', 'old');
    const blocked = h.tracked(b.blpop('bq', 0));
    r.before.blocked = await h.waitBlocked(info(n), 1);
    h.emit({ event: 'ready' });

    await h.step('killed');
    r.down.noticed = await waitFor(() => Object.values(all).every(client => client.status !== 'ready'), 5000);
    // Held in the offline queue until the client is ready again.
    const queued = { n: h.tracked(n.get('k')), ap: h.tracked(ap.get('k')) };
    await sleep(1500); // several reconnect attempts while Redis is down
    r.down.blockedSettledWhileDown = blocked.settled ? blocked.result : 'waiting';
    r.down.queuedSettledWhileDown = Object.fromEntries(Object.entries(queued).map(([k, v]) => [k, v.settled ? v.result : 'waiting']));
    h.emit({ event: 'down' });

    await h.step('restarted');
    r.after.ready = await waitFor(() => Object.values(all).every(client => client.status === 'ready'), 15000);
    r.after.notReady = Object.entries(all).filter(([, client]) => client.status !== 'ready').map(([name, client]) => `${name}:${client.status}`);
    r.after.queued = {};
    for (const [name, state] of Object.entries(queued))
        r.after.queued[name] = await h.settle(state, 15000);
    r.after.set = await outcome(n.set('k', 'new'));
    r.after.get = await outcome(ap.get('k'));
    // The BLPOP left unanswered was sent again: it gets the element.
    r.after.blockedAgain = await h.waitBlocked(info(n), 1, 10000);
    await n.rpush('bq', 'x');
    r.after.blockedOutcome = await h.settle(blocked, 5000);
    let i = 0;
    r.after.subscriberBack = await waitFor(async () => {
        await n.publish('ch', `after-${i++}`);
        const after = got.filter(([, m]) => m.startsWith('after-'));
        return after.some(([kind]) => kind === 'message') && after.some(([kind]) => kind === 'pmessage');
    }, 15000, 200);
    close(...Object.values(all));
    return r;
}

h.main({
    async features() {
        return h.features({ basic, autoPipelining, transactions, pubsub, blocking });
    },
    crash,
});
