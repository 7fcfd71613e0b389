"""A cheap SMTP sink for benchmarks: ``python -m tests.bench.smtp_sink PORT OUTFILE``.

An aiosmtpd server in its own process whose handler only remembers who each message
came from and went to (no parsing, no disk per message), so the sink costs as little
as a real SMTP conversation allows. On SIGTERM it writes ``sender<TAB>recipient`` lines
to OUTFILE and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.controller import Controller


class RecordingSink:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.rows.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def main(argv: list[str]) -> int:
    port, out = int(argv[1]), argv[2]
    handler = RecordingSink()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    done = asyncio.Event()
    loop = asyncio.new_event_loop()

    def stop(*_: Any) -> None:
        loop.call_soon_threadsafe(done.set)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run_until_complete(done.wait())
    controller.stop()
    with open(out, "w", encoding="utf-8") as fh:
        for sender, recipients in handler.rows:
            for recipient in recipients:
                fh.write(f"{sender}\t{recipient}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
