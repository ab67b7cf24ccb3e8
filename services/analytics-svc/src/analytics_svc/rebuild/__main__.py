"""``python -m analytics_svc.rebuild``: rebuild the read models from the topics (``make
analytics-rebuild``). Prints a JSON summary on stdout; exit codes: 0 swapped (or a dry run found
the rebuilt tables equal), 1 error, 2 bad arguments, 3 refused (the broker holds less history
than the live model; ``--force`` swaps anyway), 4 dry run found differences, 5 another rebuild is
running, 6 the live tables are not at the migrations' head."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys

from .service import EXIT_ERROR, Options, rebuild


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m analytics_svc.rebuild",
        description="Replay the topics into a fresh schema with the live handlers and swap it in "
                    "(docs/metrics.md, 'Rebuild'). The live consumer and the API keep running.")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and compare with the live tables row by row, never swap")
    parser.add_argument("--force", action="store_true",
                        help="swap even when the replay holds fewer tickets than the live model")
    parser.add_argument("--drop-previous", action="store_true",
                        help="drop the replaced tables after the swap (default: kept in analytics_before_rebuild "
                             "until the next rebuild)")
    parser.add_argument("--keep-schema", action="store_true",
                        help="keep the rebuild schema after a dry run or a refusal, to inspect it")
    parser.add_argument("--batch-size", type=int, default=500, help="events per fold transaction (default 500)")
    parser.add_argument("--lock-timeout-ms", type=int, default=5000,
                        help="how long the swap waits for readers of the live tables per attempt (default 5000)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.lock_timeout_ms < 1:
        parser.error("--batch-size and --lock-timeout-ms must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from helpdesk_common.observability import configure_logging

    from ..config import get_settings

    settings = get_settings()
    configure_logging(f"{settings.service_name}-rebuild", settings.log_level)
    for handler in logging.getLogger().handlers:  # stdout carries the JSON summary only
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    options = Options(dry_run=args.dry_run, force=args.force, drop_previous=args.drop_previous,
                      keep_schema=args.keep_schema, batch_size=args.batch_size, lock_timeout_ms=args.lock_timeout_ms)
    try:
        outcome = asyncio.run(rebuild(settings, options))
    except Exception as exc:  # the summary still says what happened, then a non-zero exit
        logging.getLogger(__name__).exception("rebuild failed")
        print(json.dumps({"status": "error", "exit_code": EXIT_ERROR, "error": repr(exc)}))
        return EXIT_ERROR
    print(json.dumps(dataclasses.asdict(outcome), ensure_ascii=False, indent=2))
    for message in outcome.messages:
        print(message, file=sys.stderr)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
