"""Event rules: the durable_rules backend vs the compiled backend on the same events (the event_rules_backend setting).

    python -m bench.bench_eventrules           # 50,000 events x 3 runs, memory over 200,000 subscribers
    python -m bench.bench_eventrules --quick   # small sizes, a smoke run

Measured in one run:
  floor          building the rule fact from a CallAttempt (no rule evaluation)
  raw durable    host.post + delete_state of a ready message on the same ruleset (no Rulebill code)
  compiled       Barring.authorise on the compiled backend (the server's default)
  durable_rules  Barring.authorise on the durable_rules backend (post, catch-all, delete session)
  alerts         CreditAlerts.evaluate_credit (fire-all mode) on both backends
Each figure is the median of the runs, as events per wall second and per CPU second of this process (one core, the
figure that survives a loaded machine); memory is the process RSS while the
durable backend sees distinct subscribers (it must stay flat: state is deleted).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, Sequence

from engine.eventrules import CallAttempt, CreditFact, load_rule_book
from engine.eventrules import durable_backend

RULES = Path(__file__).resolve().parents[1] / "rules"
GROUPS = ["DST_INTERNATIONAL", "DST_PREMIUM", "DST_EU", "DST_EMERGENCY", "DST_FREEPHONE", "DST_ONNET", "DST_NATIONAL_FIXED"]
PLANS = [("mno", "TP_SMART_S"), ("mno", "TP_SMART_M"), ("mvno-alpha", "TP_ALPHA_SIMPLE"), ("mvno-beta", "TP_BETA_DATA")]


def attempts(n: int, seed: int = 7, first: int = 0) -> list[CallAttempt]:
    return list(iter_attempts(n, seed, first))


def iter_attempts(n: int, seed: int = 7, first: int = 0) -> Iterator[CallAttempt]:
    rnd = random.Random(seed)
    start = datetime(2026, 11, 1)
    for i in range(first, first + n):
        tenant, plan = rnd.choice(PLANS)
        limit = rnd.choice([None, 50_000_000, 100_000_000])
        yield (
            CallAttempt(
                msisdn=f"336{i:08d}",
                tenant=tenant,
                plan_id=plan,
                service=rnd.choice(["voice", "voice", "sms", "data"]),
                destination_group=rnd.choice(GROUPS),
                roaming=rnd.random() < 0.1,
                visited_network=rnd.choice(["", "DEUD2", "AAMSAT"]),
                credit_used_micros=rnd.randrange(0, 120_000_000),
                credit_limit_micros=limit,
                flags=frozenset({"bar_premium"}) if rnd.random() < 0.05 else frozenset(),
                at=start + timedelta(minutes=rnd.randrange(0, 43_200)),
            )
        )


def credit_facts(n: int, seed: int = 11) -> list[CreditFact]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        before = rnd.randrange(0, 1_000_000_000)
        out.append(
            CreditFact(rnd.choice(["mno", "mvno-alpha", "mvno-beta"]), f"ACC{i}", "2026-11", "EUR", 1_000_000_000, before, before + rnd.randrange(0, 100_000_000))
        )
    return out


CPU: dict[str, float] = {}   # the same medians per CPU second of this process (one core): the figure a loaded machine keeps


def rates(fns: dict[str, Callable[[], None]], n: int, runs: int) -> dict[str, float]:
    """Median events/s (wall) of each function; runs are interleaved so machine noise hits all alike.  The median
    events per CPU second of each goes to :data:`CPU`."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            samples[name].append(n / (time.perf_counter() - t))
            cpu[name].append(n / max(time.process_time() - c, 1e-9))
    CPU.update({name: statistics.median(values) for name, values in cpu.items()})
    return {name: statistics.median(values) for name, values in samples.items()}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource

    return pages * resource.getpagesize() / 2**20


def main(argv: Sequence[str] | None = None) -> None:
    import os

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=None, help="distinct subscribers for the memory check")
    args = ap.parse_args(argv)
    n = args.events or (2_000 if args.quick else 50_000)
    subs = args.subscribers or (10_000 if args.quick else 200_000)
    runs = max(3, args.runs)

    book = load_rule_book(RULES)
    py, dr = book.barring("compiled"), book.barring("durable_rules")
    events = attempts(n)
    messages = []
    raw_name = dr._backend.ruleset_name  # type: ignore[attr-defined]
    fields = durable_backend._host().registered[raw_name].fields
    for a in events:
        m = fields.message(a.fact())
        m["rb"] = 1
        messages.append(m)
    host = durable_backend._host().host

    def floor() -> None:
        for a in events:
            a.fact()

    def raw_durable() -> None:
        for i, m in enumerate(messages):
            m["sid"] = sid = str(i % 64)
            host.post(raw_name, m)
            host.delete_state(raw_name, sid)

    def python_backend() -> None:
        for a in events:
            py.authorise(a)

    def durable() -> None:
        for a in events:
            dr.authorise(a)

    # the two backends must agree on this very workload
    assert [py.authorise(a) for a in events[:2000]] == [dr.authorise(a) for a in events[:2000]]
    print(f"barring table: {len(book.barring_table.rules)} rules; {n:,} events x {runs} runs (medians)")
    results = rates(
        {
            "floor (fact only)": floor,
            "raw durable post+delete": raw_durable,
            "compiled backend authorise": python_backend,
            "durable_rules backend authorise": durable,
        },
        n,
        runs,
    )
    for name, value in results.items():
        print(f"  {name:32s} {value:12,.0f} events/s wall {CPU[name]:12,.0f} events/s per core (CPU)")
    print(f"  compiled / durable_rules ratio   {CPU['compiled backend authorise'] / CPU['durable_rules backend authorise']:12.1f} x (CPU)")
    print(f"  durable_rules backend / raw durable {CPU['durable_rules backend authorise'] / CPU['raw durable post+delete']:9.2f} (CPU)")

    facts = credit_facts(n)
    pa, da = book.credit_alerts("compiled"), book.credit_alerts("durable_rules")

    def alerts_python() -> None:
        for f in facts:
            pa.evaluate_credit(f)

    def alerts_durable() -> None:
        for f in facts:
            da.evaluate_credit(f)

    alert_rates = rates({"compiled": alerts_python, "durable_rules": alerts_durable}, n, runs)
    fa, fd = alert_rates["compiled"], alert_rates["durable_rules"]
    print(f"credit alerts ({len(book.alert_table.thresholds)} thresholds, fire-all): compiled {fa:,.0f}/s wall "
          f"{CPU['compiled']:,.0f}/s CPU, durable_rules {fd:,.0f}/s wall {CPU['durable_rules']:,.0f}/s CPU")

    print(f"memory, durable backend, {subs:,} distinct subscribers:")
    chunk = max(1, subs // 4)
    done = 0
    base = rss_mb()
    while done < subs:
        # distinct subscribers (msisdn 336 + running number beyond the timed events), generated lazily
        for a in iter_attempts(chunk, seed=1000 + done, first=10**7 + done):
            dr.authorise(a)
        done += chunk
        print(f"  after {done:>9,}: RSS {rss_mb():7.1f} MB (start {base:.1f} MB)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
