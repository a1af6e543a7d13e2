"""``caspio-emulator serve``: the emulator as a long-running local server.

Prints the base URL and the credentials (the demo's, or the dataset's ``account``) and serves
until interrupted. Without ``--data`` it serves the bundled demo account.
"""

from __future__ import annotations

import argparse
import errno
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


EXAMPLES = """examples:
  caspio-emulator serve                                   the demo account on 127.0.0.1:8787
  caspio-emulator serve --port 0 --generate Big=300000    a free port, plus a 300,000-row table
  caspio-emulator serve --data dataset.json --latency-ms 150 --rate-limit 2000/300"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="caspio-emulator",
        description="A local Caspio REST API (OAuth, tables, views, records, knobs for faults).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser(
        "serve",
        help="serve an account on loopback until interrupted",
        description="Serve an account on loopback until interrupted (Ctrl-C or SIGTERM); prints "
        "the base URL and the credentials.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument(
        "--port", type=int, default=8787, help="port (default: 8787; 0 picks a free one)"
    )
    s.add_argument("--data", help="dataset JSON (DATASET.md); default: the demo account")
    s.add_argument("--empty", action="store_true", help="start with an empty account")
    s.add_argument(
        "--generate",
        action="append",
        default=[],
        metavar="Table=N",
        help="add N synthetic rows to Table (created if absent); repeatable",
    )
    s.add_argument(
        "--latency-ms", type=float, default=0.0, help="added to every answer (default: 0)"
    )
    s.add_argument(
        "--rate-limit",
        default=None,
        metavar="N/SECONDS",
        help="answer 429 past N calls per SECONDS, e.g. 2000/300",
    )
    s.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="share of calls (0-1) answered with a random fault: 500, 503, 429, reset, truncate",
    )
    s.add_argument(
        "--token-ttl", type=float, default=86399, help="access token lifetime in seconds"
    )
    s.add_argument("--quota", type=int, default=None, help="API calls allowed before 403")
    s.add_argument(
        "--stale-token-400",
        action="store_true",
        help="answer an expired token with Caspio's 400 IncorrectQueryParameter, not 401",
    )
    s.add_argument(
        "--retry-after", type=int, default=None, help="Retry-After seconds sent with each 429"
    )
    s.add_argument(
        "--hang-seconds", type=float, default=10.0, help="how long a scripted 'hang' fault hangs"
    )
    s.add_argument("--client-id", default=None, help="the client id to accept (default: random)")
    s.add_argument(
        "--client-secret", default=None, help="the client secret to accept (default: random)"
    )
    s.add_argument("--seed", type=int, default=0, help="seed of generated rows and faults")
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
        emu.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"caspio-emulator: error: port {args.port} on {args.host} is already in use: stop "
                "what listens there or pass another --port (0 picks a free one)",
                file=sys.stderr,
            )
        else:
            print(f"caspio-emulator: error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, argparse.ArgumentTypeError, ValueError, KeyError, TypeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"caspio-emulator: error: bad dataset or option: {text}", file=sys.stderr)
        return 2
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
