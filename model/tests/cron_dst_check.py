#!/usr/bin/env python3
"""Works out the DST rows of cron_table.rs independently of the Rust evaluator, with zoneinfo.

Usage: python3 model/tests/cron_dst_check.py — prints each row's expected fire times.

Only the shapes used in the DST rows are understood: fields of numbers, lists, ranges, `*`, `*/n`
and day names alone (no other names, no L). The two rules are implemented as their definitions say, by brute force:
- interval rule: walk real time second by second (minute by minute for 5 fields) and fire when
  the wall-clock reading matches (Vixie cron's wildcard jobs);
- fixed-time rule: walk wall-clock times; a time that exists once fires then, one that exists
  twice fires at its first occurrence (fold=0), one that does not exist fires at the first
  instant whose wall clock is later (the end of the gap); equal instants fire once.
"""
import datetime as dt
import zoneinfo

UTC = dt.timezone.utc


NAMES = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


def field(text, lo, hi):
    text = ",".join(str(NAMES.get(p, p)) for p in text.split(","))
    out = set()
    for part in text.split(","):
        rng, _, step = part.partition("/")
        step = int(step) if step else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a, b = map(int, rng.split("-"))
        else:
            a = int(rng)
            b = hi if step != 1 or "/" in part else a
        out.update(range(a, b + 1, step))
    return out


def parse(expr):
    f = expr.split()
    sec = f[5] if len(f) == 6 else "0"
    fixed = all(not any(c in x for c in "*/-") for x in (f[0], f[1], sec))
    return dict(
        s=field(sec, 0, 59), m=field(f[0], 0, 59), h=field(f[1], 0, 23),
        dom=field(f[2], 1, 31), mon=field(f[3], 1, 12),
        dow={d % 7 for d in field(f[4], 0, 7)},
        dom_star=f[2] == "*", dow_star=f[4] == "*", fixed=fixed, six=len(f) == 6)


def matches(c, local):
    dom = local.day in c["dom"]
    dow = (local.isoweekday() % 7) in c["dow"]
    if c["dom_star"] and c["dow_star"]:
        day = True
    elif c["dom_star"]:
        day = dow
    elif c["dow_star"]:
        day = dom
    else:
        day = dom or dow
    return (day and local.month in c["mon"] and local.hour in c["h"]
            and local.minute in c["m"] and local.second in c["s"])


def interval(c, z, after, count):
    step = dt.timedelta(seconds=1 if c["six"] else 60)
    t = after.replace(microsecond=0)
    if not c["six"]:
        t = t.replace(second=0)
    out = []
    while len(out) < count:
        t += step
        if t > after and matches(c, t.astimezone(z).replace(tzinfo=None)):
            out.append(t)
    return out


def exists(z, local):
    aware = local.replace(tzinfo=z)
    return aware.astimezone(UTC).astimezone(z).replace(tzinfo=None) == local


def fixed(c, z, after, count):
    step = dt.timedelta(seconds=1 if c["six"] else 60)
    local = after.astimezone(z).replace(tzinfo=None, microsecond=0) - dt.timedelta(hours=3)
    if not c["six"]:
        local = local.replace(second=0)
    out = []
    while len(out) < count:
        local += step
        if not matches(c, local):
            continue
        if exists(z, local):
            inst = local.replace(tzinfo=z, fold=0).astimezone(UTC)
        else:  # the first instant whose wall clock is later: the end of the gap
            guess = local.replace(tzinfo=z, fold=0).astimezone(UTC) - dt.timedelta(hours=3)
            while guess.astimezone(z).replace(tzinfo=None) <= local:
                guess += dt.timedelta(seconds=1)
            inst = guess
        if inst > after and (not out or inst > out[-1]):
            out.append(inst)
    return out


def rows():
    import pathlib
    import re
    text = (pathlib.Path(__file__).parent / "cron_table.rs").read_text()
    dst = text[text.index("// DST rows") : text.index("// End of DST rows")]
    for m in re.finditer(r'\(\s*"([^"]+)",\s*"([^"]+)",\s*"([^"]+)",\s*&\[([^\]]*)\]', dst):
        expr, zone, start, want = m.groups()
        yield expr, zone, start, re.findall(r'"([^"]+)"', want)


if __name__ == "__main__":
    bad = 0
    for expr, zone, start, want in rows():
        c = parse(expr)
        z = zoneinfo.ZoneInfo(zone)
        after = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        got = (fixed if c["fixed"] else interval)(c, z, after, len(want))
        got = [g.strftime("%Y-%m-%dT%H:%M:%SZ") for g in got]
        flag = "ok  " if got == want else "DIFF"
        bad += got != want
        print(f"{flag} {expr!r:24} {zone:20} after {start}: {got}")
    raise SystemExit(1 if bad else 0)
