"""``caspio-emulator serve``: the emulator as a long-running local server.

Prints the base URL and the credentials (the demo's, or the dataset's ``account``) and serves
until interrupted. Without ``--data`` it serves the bundled demo account.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence


def _generate(items: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not name or not n.replace("_", "").isdigit():
            raise argparse.ArgumentTypeError(f"--generate expects Table=N, got {item!r}")
        out[name] = int(n.replace("_", ""))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="caspio-emulator", description="A local Caspio REST API")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve an account on loopback until interrupted")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    s.add_argument("--data", help="dataset JSON (DATASET.md); default: the demo account")
    s.add_argument("--empty", action="store_true", help="start with an empty account")
    s.add_argument("--generate", action="append", default=[], metavar="Table=N")
    s.add_argument("--latency-ms", type=float, default=0.0)
    s.add_argument("--rate-limit", default=None, metavar="N/SECONDS", help="e.g. 2000/300")
    s.add_argument("--fault-rate", type=float, default=0.0)
    s.add_argument("--token-ttl", type=float, default=86399)
    s.add_argument("--quota", type=int, default=None, help="API calls allowed before 403")
    s.add_argument("--stale-token-400", action="store_true")
    s.add_argument("--retry-after", type=int, default=None)
    s.add_argument("--hang-seconds", type=float, default=10.0)
    s.add_argument("--client-id", default=None)
    s.add_argument("--client-secret", default=None)
    s.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from caspio_emulator import DEMO_DATASET, DatasetError, Emulator

    data = None if args.empty else (args.data or DEMO_DATASET)
    try:
        emu = Emulator(
            dataset=data,
            generate=_generate(args.generate),
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            fault_rate=args.fault_rate,
            token_ttl=args.token_ttl,
            host=args.host,
            port=args.port,
            client_id=args.client_id,
            client_secret=args.client_secret,
            quota=args.quota,
            stale_token_400=args.stale_token_400,
            retry_after=args.retry_after,
            hang_seconds=args.hang_seconds,
            seed=args.seed,
        )
    except (DatasetError, argparse.ArgumentTypeError, OSError, ValueError) as exc:
        print(f"caspio-emulator: {exc}", file=sys.stderr)
        return 2
    emu.start()
    print(f"Caspio emulator serving {data or 'an empty account'}", flush=True)
    print(f"  base URL      {emu.base_url}", flush=True)
    print(f"  REST v3       {emu.v3_url}", flush=True)
    print(f"  token URL     {emu.token_url}", flush=True)
    print(f"  client id     {emu.client_id}", flush=True)
    print(f"  client secret {emu.client_secret}", flush=True)
    print("Ctrl-C to stop.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
