"""Redis's own test suite through the proxy.

The Tcl suite that ships with the installed redis-server (Debian's source
package, fetched and cached by fetch_suite.sh) runs in its external-server
mode, as upstream's CI runs it against a server it did not start
(`./runtest --host H --port P --tags -slow`), one unit at a time: first
straight against a fresh redis-server, then against a fresh redis-server
behind a fresh redvip (plain proxy, one thread). Every test that passes
direct must pass through the proxy too. A unit with tests that do not is run
through the proxy once more: what passes then is reported as flaky (a timing
test the machine's load tipped over), what fails again fails this test.
Units whose tests the external mode skips all are reported as such and not
run through the proxy. The tests named in excluded.txt (at most 3, each with
its reason) are skipped on both sides.

Knobs (environment; `python3 test_redis_suite.py --help` takes most of them
as options too):
  REDVIP_CONFORMANCE_UNITS    units to run, e.g. "unit/type/list unit/scripting"
                              (default: every unit of the suite's all_tests)
  REDVIP_CONFORMANCE_PROXY    TOML lines added to redvip's [proxy] section ("\\n"
                              between lines), to run the suite against another
                              proxy mode, e.g. "multiplex = true"
  REDVIP_CONFORMANCE_TAGS     runtest --tags (default "-slow")
  REDVIP_CONFORMANCE_UNIT_TIMEOUT  seconds one unit may take on one side
                              (default 240; runtest's own --timeout, for a
                              run that stops making progress, is 90)
  REDVIP_CONFORMANCE_SKIP_FILE  more tests to skip on both sides, in
                              excluded.txt's format and without its limit: for
                              finding what else fails behind a test that hangs
  REDVIP_CONFORMANCE_KEEP     a directory to keep each run's runtest output and
                              the redis/redvip logs in (default: a temporary
                              directory, removed at exit)
  REDVIP_CONFORMANCE_CACHE    where fetch_suite.sh caches the suite
                              (default /var/cache/redvip-conformance)
"""

import atexit
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

import redvip_testlib as lib

HERE = os.path.dirname(os.path.abspath(__file__))
EXCLUDED_FILE = os.path.join(HERE, "excluded.txt")
MAX_EXCLUDED = 3

# How upstream's CI starts the server it runs the external mode against.
REDIS_ARGS = ["--enable-debug-command", "yes", "--enable-protected-configs", "yes",
              "--enable-module-command", "yes"]


def env(name, default):
    value = os.environ.get(name, "").strip()
    return value if value else default


UNIT_TIMEOUT = float(env("REDVIP_CONFORMANCE_UNIT_TIMEOUT", "240"))
# runtest's own --timeout: a run with no test starting or ending for this long
# is ended (a reply that never comes: the Tcl client waits forever). Twice
# the longest test (unit/hyperloglog's fuzzer, 43 s here).
PROGRESS_TIMEOUT = int(min(90, UNIT_TIMEOUT))
TAGS = env("REDVIP_CONFORMANCE_TAGS", "-slow")
PROXY_EXTRA = env("REDVIP_CONFORMANCE_PROXY", "").replace("\\n", "\n")


# ---------------------------------------------------------------- the suite

def fetch_suite():
    """The cached suite's directory (fetched on first use)."""
    script = os.path.join(HERE, "fetch_suite.sh")
    proc = subprocess.run(["bash", script], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"fetching Redis's test suite failed:\n{proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


def suite_units(suite):
    """The units of the suite's ::all_tests list, in its order."""
    with open(os.path.join(suite, "tests", "test_helper.tcl")) as f:
        text = f.read()
    match = re.search(r"set ::all_tests \{(.*?)\}", text, re.S)
    if not match:
        raise AssertionError("no ::all_tests list in tests/test_helper.tcl")
    return match.group(1).split()


def read_excluded(path=EXCLUDED_FILE, limit=MAX_EXCLUDED):
    """{test name: reason} from lines `test name  # reason` (# lines are comments)."""
    excluded = {}
    if not os.path.exists(path):
        return excluded
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, reason = line.rpartition(" # ")
            if not sep or not name.strip() or not reason.strip():
                raise AssertionError(f"{path}:{number}: expected `test name  # reason`, got {line!r}")
            excluded[name.strip()] = reason.strip()
    if limit is not None and len(excluded) > limit:
        raise AssertionError(f"{path}: {len(excluded)} exclusions, at most {limit} are allowed")
    return excluded


# ------------------------------------------------------ runtest's output

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS = re.compile(r"^\[(ok|err|exception|skip|ignore|TIMEOUT)\]: ?(.*)$")
# Lines runtest prints of its own between the tests' reports.
OWN_LINE = re.compile(r"^(\[ready\]|\[\d+/\d+ done\]|Testing |Cleanup: |Starting test server|"
                      r"\s+The End$|Execution time of|\s+\d+ seconds - |\\o/ |!!! WARNING|\*\*\* \[)")


class UnitResult:
    """What one runtest run of one unit reported."""

    def __init__(self):
        self.tests = collections.OrderedDict()  # name -> [(status, message), ...] in run order
        self.problems = []   # the run's own failures: exception, TIMEOUT, killed, exit code
        self.seconds = 0.0
        self.returncode = None
        self.ignored = 0
        self.skipped = []    # names runtest skipped (--skiptest)
        self.output_path = None

    def add(self, name, status, message=""):
        self.tests.setdefault(name, []).append((status, message))

    def count(self, status):
        return sum(1 for runs in self.tests.values() for s, _ in runs if s == status)

    @property
    def ran(self):
        return sum(len(runs) for runs in self.tests.values())

    @property
    def failed(self):
        """Runs that did not pass: err, or hung."""
        return self.ran - self.count("ok")


def parse_runtest(text, result):
    """Fills result from runtest's output: [ok]: NAME (N ms), [err]: NAME in FILE
    followed by its message lines, [exception]: ..., [TIMEOUT]: ..."""
    lines = ANSI.sub("", text).splitlines()
    i = 0
    while i < len(lines):
        match = STATUS.match(lines[i])
        i += 1
        if not match:
            continue
        status, data = match.groups()
        if status == "ok":
            result.add(re.sub(r" \(\d+ ms\)$", "", data), "ok")
        elif status == "ignore":
            result.ignored += 1
        elif status == "skip":
            result.skipped.append(data)
        elif status in ("err", "exception", "TIMEOUT"):
            body = []
            while i < len(lines) and not STATUS.match(lines[i]) and not OWN_LINE.match(lines[i]):
                body.append(lines[i])
                i += 1
            message = "\n".join(body).strip()
            if status == "err":
                result.add(re.sub(r" in tests/\S+\.tcl$", "", data), "err", message)
                continue
            result.problems.append(f"[{status}]: {data}\n{message}".strip())
            hung = re.search(r"\(IN PROGRESS\) (.*)$", message, re.M)
            if status == "TIMEOUT" and hung:  # the test that waited for a reply that never came
                result.add(hung.group(1), "hung", f"hung: nothing happened for {PROGRESS_TIMEOUT} s "
                                                  "(runtest --timeout), the unit was ended there")
    return result


# ----------------------------------------------------------------- running

def kill_group(pgid):
    """Ends the process group of a runtest run this module started (its
    session: the run and the Tcl test client it spawned), if anything is left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Runner:
    def __init__(self, suite, keep_dir, skip=()):
        self.suite = suite
        self.keep_dir = keep_dir
        self.skip = list(skip)  # test names runtest skips, on both sides
        self.running = None     # the runtest run's process group, while it runs
        atexit.register(lambda: self.running and kill_group(self.running))

    def workdir(self):
        """A private copy of the suite: runtest writes under tests/tmp."""
        path = os.path.join(lib.temp_dir("redvip-conformance-"), "suite")
        shutil.copytree(self.suite, path, symlinks=True)
        return path

    def start_redis(self):
        return lib.RedisServer(extra=REDIS_ARGS)

    def start_proxy(self, redis_port):
        port = lib.free_port()
        extra_proxy = "threads = 1\n" + PROXY_EXTRA
        config = lib.plain_config(port, redis_port, extra_proxy=extra_proxy)
        return lib.Redvip(config, port, log_level="warn")

    def runtest(self, workdir, unit, port, label):
        """Runs one unit against 127.0.0.1:port; returns its UnitResult."""
        result = UnitResult()
        safe = unit.replace("/", "_")
        result.output_path = os.path.join(self.keep_dir, f"{safe}.{label}.out")
        argv = ["./runtest", "--host", "127.0.0.1", "--port", str(port), "--single", unit,
                "--tags", TAGS, "--durable", "--timeout", str(PROGRESS_TIMEOUT)]
        for name in self.skip:
            argv += ["--skiptest", name]
        started = time.monotonic()
        with open(result.output_path, "w") as out:
            # A session of its own: the run and the test client it spawns are
            # one process group, ended together if the unit overruns.
            proc = lib.start_process(argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=dict(os.environ, TERM="dumb"))
            self.running = proc.pid
            try:
                proc.wait(timeout=UNIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                result.problems.append(f"killed after {UNIT_TIMEOUT:.0f} s (REDVIP_CONFORMANCE_UNIT_TIMEOUT)")
            finally:
                kill_group(proc.pid)
                self.running = None
                lib.stop_process(proc)
        result.seconds = time.monotonic() - started
        result.returncode = proc.returncode
        with open(result.output_path, errors="replace") as f:
            text = f.read()
        parse_runtest(text, result)
        if result.returncode not in (0, None) and result.ran == 0 and not result.problems:
            result.problems.append(f"runtest exited with {result.returncode}:\n{tail(text, 10)}")
        return result

    def direct(self, workdir, unit):
        redis = self.start_redis()
        try:
            return self.runtest(workdir, unit, redis.port, "direct")
        finally:
            self._keep_log(os.path.join(redis.dir, "redis.log"), unit, "direct.redis.log")
            redis.stop()

    def proxied(self, workdir, unit, label="proxy"):
        redis = self.start_redis()
        try:
            proxy = self.start_proxy(redis.port)
            try:
                result = self.runtest(workdir, unit, proxy.port, label)
            finally:
                died = proxy.proc.poll()
                code = proxy.stop()
                self._keep_log(proxy.log_path, unit, f"{label}.redvip.log")
            if died is not None:
                result.problems.append(f"redvip exited during the unit with {died}:\n" + tail(proxy.read_log()))
            elif code != 0:
                result.problems.append(f"redvip exited with {code} at SIGTERM:\n" + tail(proxy.read_log()))
            return result
        finally:
            self._keep_log(os.path.join(redis.dir, "redis.log"), unit, f"{label}.redis.log")
            redis.stop()

    def _keep_log(self, path, unit, suffix):
        if os.path.exists(path):
            shutil.copyfile(path, os.path.join(self.keep_dir, f"{unit.replace('/', '_')}.{suffix}"))


def tail(text, lines=20):
    return "\n".join(text.strip().splitlines()[-lines:])


def describe(regressions):
    """Report lines: each failing test once (xN when it runs N times in its
    unit, as scripting's tests do for EVAL and FCALL), with its message; the
    tests a unit never reached through the proxy on one line."""
    out, seen, unreached = [], collections.OrderedDict(), collections.OrderedDict()
    for unit, name, message in regressions:
        if message.startswith(NOT_RUN):
            unreached.setdefault((unit, message), []).append(name)
        else:
            seen.setdefault((unit, name), []).append(message)
    for (unit, name), messages in seen.items():
        out.append(f"  {unit}: {name}" + (f" (x{len(messages)})" if len(messages) > 1 else ""))
        out += ["      " + line for line in tail(messages[0], 12).splitlines()]
    for (unit, message), names in unreached.items():
        out.append(f"  {unit}: {len(names)} test(s) {message}:")
        out += ["      " + name for name in dict.fromkeys(names)]
    return out


NOT_RUN = "not run through the proxy"


def compare(direct, proxied):
    """[(name, what happened through the proxy)] for each run of a test that
    passed direct and did not pass through the proxy."""
    regressions = []
    for name, runs in direct.tests.items():
        through = proxied.tests.get(name, [])
        for index, (status, _) in enumerate(runs):
            if status != "ok":
                continue
            if index < len(through):
                got, message = through[index]
                if got != "ok":
                    regressions.append((name, message or got))
            else:
                reason = "; ".join(p.splitlines()[0] for p in proxied.problems) or "the unit ended before it"
                regressions.append((name, f"{NOT_RUN} ({reason})"))
    return regressions


# ------------------------------------------------------------------- tests

class RedisSuiteThroughProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.suite = fetch_suite()
        keep = os.environ.get("REDVIP_CONFORMANCE_KEEP", "").strip()
        if keep:
            os.makedirs(keep, exist_ok=True)
        cls.keep_dir = keep or lib.temp_dir("redvip-conformance-out-")
        cls.excluded = read_excluded()
        # More to skip while investigating (same format, no limit): not for CI.
        extra = os.environ.get("REDVIP_CONFORMANCE_SKIP_FILE", "").strip()
        cls.skipped = dict(cls.excluded, **(read_excluded(extra, limit=None) if extra else {}))
        all_units = suite_units(cls.suite)
        wanted = env("REDVIP_CONFORMANCE_UNITS", "").replace(",", " ").split()
        unknown = [u for u in wanted if u not in all_units]
        if unknown:
            raise AssertionError(f"not units of the suite: {unknown}; it has {all_units}")
        cls.units = wanted or all_units
        cls.runner = Runner(cls.suite, cls.keep_dir, skip=cls.skipped)

    def test_every_test_that_passes_direct_passes_through_the_proxy(self):
        started = time.monotonic()
        workdir = self.runner.workdir()
        rows, regressions, problems, flaky = [], [], [], []
        print(f"\nRedis's test suite from {self.suite}\nredvip: {lib.REDVIP_BIN}"
              f"{' with [proxy] ' + PROXY_EXTRA.strip() if PROXY_EXTRA.strip() else ''}"
              f"\nruntest --tags {TAGS!r}; outputs and logs in {self.keep_dir}\n", file=sys.stderr, flush=True)
        for unit in self.units:
            direct = self.runner.direct(workdir, unit)
            if direct.ran == 0 and not direct.problems:
                rows.append((unit, direct, None))
                print(f"  {unit}: nothing runs in external mode ({direct.seconds:.1f} s)", file=sys.stderr, flush=True)
                continue
            proxied = self.runner.proxied(workdir, unit)
            found = compare(direct, proxied)
            if found and not proxied.problems:
                # Once more, to tell a proxy bug from a timing test that the
                # machine's load tipped over: what passes then is reported as
                # flaky. Not after a hang or a crash: that is no timing.
                again = compare(direct, self.runner.proxied(workdir, unit, "proxy-retry"))
                failing_again = {name for name, _ in again}
                flaky += [(unit, name, message) for name, message in found if name not in failing_again]
                found = [(name, message) for name, message in found if name in failing_again]
            rows.append((unit, direct, proxied))
            for problem in direct.problems:
                problems.append((unit, "direct", problem))
            for problem in proxied.problems:
                problems.append((unit, "proxy", problem))
            regressions += [(unit, name, message) for name, message in found]
            print(f"  {unit}: direct {direct.count('ok')} ok {direct.failed} failed ({direct.seconds:.1f} s), "
                  f"proxy {proxied.count('ok')} ok {proxied.failed} failed ({proxied.seconds:.1f} s)"
                  f"{', ' + str(len(found)) + ' regression(s)' if found else ''}",
                  file=sys.stderr, flush=True)
        report = self.report(rows, regressions, problems, flaky, time.monotonic() - started)
        print(report, file=sys.stderr, flush=True)
        self.assertGreater(sum(d.count("ok") for _, d, _ in rows), 0, "no test of the suite passed even direct")
        if regressions:
            names = list(dict.fromkeys(f"{unit}: {name}" for unit, name, _ in regressions))
            self.fail(f"{len(regressions)} test run(s) pass direct but not through the proxy (report above): "
                      + "; ".join(names[:10]) + ("; ..." if len(names) > 10 else ""))

    def report(self, rows, regressions, problems, flaky, seconds):
        out = ["", f"{'unit':42} {'direct ok/failed':>16} {'proxy ok/failed':>15} {'direct s':>9} {'proxy s':>8}"]
        totals = [0, 0, 0, 0, 0.0, 0.0]
        for unit, direct, proxied in rows:
            if proxied is None:
                out.append(f"{unit:42} {'(none runs)':>16} {'':>15} {direct.seconds:9.1f}")
                totals[4] += direct.seconds
                continue
            mark = " <-" if any(u == unit for u, _, _ in regressions) else ""
            out.append(f"{unit:42} {direct.count('ok'):>10}/{direct.failed:<5} "
                       f"{proxied.count('ok'):>9}/{proxied.failed:<5} "
                       f"{direct.seconds:9.1f} {proxied.seconds:8.1f}{mark}")
            totals = [totals[0] + direct.count("ok"), totals[1] + direct.failed,
                      totals[2] + proxied.count("ok"), totals[3] + proxied.failed,
                      totals[4] + direct.seconds, totals[5] + proxied.seconds]
        out.append(f"{'total':42} {totals[0]:>10}/{totals[1]:<5} {totals[2]:>9}/{totals[3]:<5} "
                   f"{totals[4]:9.1f} {totals[5]:8.1f}   ({seconds:.0f} s in all, retries included)")
        direct_failures = [(unit, name, runs) for unit, direct, _ in rows
                           for name, runs in direct.tests.items() if any(s != "ok" for s, _ in runs)]
        if direct_failures:
            out += ["", "Failing direct too (not the proxy's; not compared):"]
            out += [f"  {unit}: {name}" for unit, name, _ in direct_failures]
        if problems:
            out += ["", "Runs that did not end normally:"]
            for unit, side, problem in problems:
                out.append(f"  {unit} ({side}): " + problem.replace("\n", "\n      "))
        if flaky:
            out += ["", "Failed through the proxy, then passed when the unit ran again (flaky):"]
            for unit, name, message in flaky:
                out.append(f"  {unit}: {name}")
                out += ["      " + line for line in tail(message, 6).splitlines()]
        skipped = [(unit, name) for unit, direct, _ in rows for name in dict.fromkeys(direct.skipped)]
        if skipped:
            out += ["", "Skipped on both sides (excluded.txt, REDVIP_CONFORMANCE_SKIP_FILE):"]
            out += [f"  {unit}: {name}  # {self.skipped.get(name, '')}" for unit, name in skipped]
        if regressions:
            out += ["", f"{len(regressions)} test run(s) pass direct but not through the proxy:"]
            out += describe(regressions)
        return "\n".join(out)


def main(argv):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("units", nargs="*", help="units to run (default: all), e.g. unit/type/list")
    parser.add_argument("--proxy", default="", help="TOML lines for redvip's [proxy], e.g. 'multiplex = true'")
    parser.add_argument("--tags", default="", help="runtest --tags (default -slow)")
    parser.add_argument("--keep", default="", help="keep outputs and logs in this directory")
    parser.add_argument("--skip-file", default="", help="more tests to skip, in excluded.txt's format")
    args = parser.parse_args(argv)
    for name, value in (("UNITS", " ".join(args.units)), ("PROXY", args.proxy), ("TAGS", args.tags),
                        ("KEEP", args.keep), ("SKIP_FILE", args.skip_file)):
        if value:
            os.environ[f"REDVIP_CONFORMANCE_{name}"] = value
    # The module-level knobs were read at import: read them again.
    global TAGS, PROXY_EXTRA
    TAGS = env("REDVIP_CONFORMANCE_TAGS", "-slow")
    PROXY_EXTRA = env("REDVIP_CONFORMANCE_PROXY", "").replace("\\n", "\n")
    unittest.main(argv=[sys.argv[0], "-v"])


if __name__ == "__main__":
    main(sys.argv[1:])
