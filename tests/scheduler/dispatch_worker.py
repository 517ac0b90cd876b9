"""A serving process for the crash and scale-out tests: the dispatcher over a logging channel.

    python -m tests.scheduler.dispatch_worker DATABASE_URL LOG LESSONS_DIR [--rate R] [--batch N]
        [--lease S] [--channel sms|telegram] [--production-limits]

`--production-limits` uses the channel's own limiter (`limiter_for`, per-chat limit for
Telegram) at `--rate` (SMS) and the dispatcher's own batch sizing, as `learnbot serve` does.

Every message it sends is appended to LOG (one `address` line, O_APPEND: whole lines survive
SIGKILL), so the test can count who got what without trusting the store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from pathlib import Path

from bot.config import Settings
from bot.domain import ChannelName, RenderedMessage, SendResult
from bot.store.db import create_engine
from scheduler.dispatcher import Dispatcher, Limiter
from scheduler.ratelimit import ChannelLimiter, limiter_for
from tests.scheduler.outbox_rows import make_dialogue


class LoggingChannel:
    """Appends each message's address to a file; its id is the line count so far."""

    def __init__(self, path: Path, name: ChannelName = ChannelName.SMS) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.count = 0
        self._name = name

    @property
    def name(self) -> ChannelName:
        """The channel it stands for."""
        return self._name

    async def send(self, message: RenderedMessage) -> SendResult:
        """Log the message (only the lesson's first part, so one line = one lesson)."""
        if message.text.startswith("Start with users"):  # the lesson, not its question
            os.write(self.fd, f"{message.address} {os.getpid()}\n".encode())
        self.count += 1
        return SendResult(f"log-{os.getpid()}-{self.count}")


async def main() -> None:
    """Dispatch until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("log", type=Path)
    parser.add_argument("lessons_dir", type=Path)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--channel", type=ChannelName, default=ChannelName.SMS)
    parser.add_argument("--production-limits", action="store_true")
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    dialogue = make_dialogue(engine, args.lessons_dir)
    channel: ChannelName = args.channel
    limiter: Limiter = ChannelLimiter(args.rate)
    batch: int | None = args.batch
    if args.production_limits:
        settings = Settings(twilio_sms_mps=args.rate or 1.0)
        limiter, batch = limiter_for(channel, settings), None
    dispatcher = Dispatcher(
        engine,
        {channel: LoggingChannel(args.log, channel)},
        dialogue,
        limiters={channel: limiter},
        batch_size=batch,
        lease=timedelta(seconds=args.lease),
    )
    await dispatcher.run_forever(idle_seconds=0.1)


if __name__ == "__main__":
    asyncio.run(main())
