"""CFS batch read: paynb's ``CfsClient.get_invoices`` against a naive sequential loop, same server, same run.

The FAQ's case: 665 stuck PAD invoices rolled up into about 120 CFS invoices, CFS answering in 100 ms.
The floor is ``distinct CFS invoices x latency / concurrency``; the baseline asks CFS once per pay-db
invoice, one after the other (one token, one GET per invoice).

    .venv/bin/python benchmarks/bench_cfs_batch.py                 # full baseline (about a minute)
    .venv/bin/python benchmarks/bench_cfs_batch.py --baseline-sample 100   # baseline on 100 calls, scaled
"""

from __future__ import annotations

import argparse
import random
import time

import requests

from paynb.cfs import CfsClient, CfsInvoiceRef
from paynb.sandbox.cfs_server import CfsState, start_cfs_server
from paynb.secrets import Secret

CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret-0d9c"


def build(invoices: int, distinct: int, seed: int) -> tuple[CfsState, list[CfsInvoiceRef]]:
    rng = random.Random(seed)
    state = CfsState()
    numbers = []
    for i in range(distinct):
        party, account, site = f"P{i % 40}", f"A{i % 40}", f"S{i % 40}"
        number = f"REG{100000 + i:08d}"
        state.add_invoice(party, account, site, number, f"{rng.randint(10, 900)}.{rng.randint(0, 99):02d}")
        numbers.append((party, account, site, number))
    refs = [CfsInvoiceRef(*numbers[i % distinct]) for i in range(invoices)]
    rng.shuffle(refs)
    return state, refs


def naive(url: str, refs: list[CfsInvoiceRef]) -> None:
    token = requests.post(
        f"{url}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=30,
    ).json()["access_token"]
    for ref in refs:
        path = f"/cfs/parties/{ref.party}/accs/{ref.account}/sites/{ref.site}/invs/{ref.invoice_number}/"
        requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30).raise_for_status()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--invoices", type=int, default=665)
    p.add_argument("--distinct", type=int, default=120)
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--baseline-sample", type=int, default=0, help="time the baseline on N calls and scale (0 = all)"
    )
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    state, refs = build(args.invoices, args.distinct, args.seed)
    with start_cfs_server(
        state, credentials={CLIENT_ID: CLIENT_SECRET}, latency_ms=args.latency_ms
    ) as server:
        client = CfsClient(
            base_url=server.url,
            client_id=CLIENT_ID,
            client_secret=Secret(CLIENT_SECRET),
            pay_connector=Secret(""),
            concurrency=args.concurrency,
        )
        started = time.perf_counter()
        results = client.get_invoices(refs)
        paynb_s = time.perf_counter() - started
        assert all(r.ok for r in results.values())
        paynb_gets = server.stats()["routes"].get("get_invoice", 0)

        sample = refs[: args.baseline_sample] if args.baseline_sample else refs
        started = time.perf_counter()
        naive(server.url, sample)
        naive_s = (time.perf_counter() - started) * len(refs) / len(sample)

    floor_s = args.distinct * args.latency_ms / 1000 / args.concurrency
    scaled = f" (scaled from {len(sample)} calls)" if len(sample) < len(refs) else ""
    print(
        f"pay-db invoices {len(refs)}, distinct CFS invoices {args.distinct}, latency {args.latency_ms} ms, "
        f"concurrency {args.concurrency}"
    )
    print(f"floor (distinct x latency / concurrency): {floor_s:7.2f} s")
    print(
        f"paynb get_invoices:                       {paynb_s:7.2f} s  ({paynb_gets} GETs, {paynb_s / floor_s:.2f}x floor)"
    )
    print(
        f"naive sequential baseline:                {naive_s:7.2f} s{scaled}  ({naive_s / paynb_s:.1f}x slower)"
    )


if __name__ == "__main__":
    main()
