"""The serve log handler: the lines of one event-loop turn go out in one write, in order."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import pytest

from handlers.cli.logs import TurnBatchedStreamHandler


class CountingStream(io.StringIO):
    """A text stream that remembers each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def logged() -> tuple[logging.Logger, CountingStream]:
    stream = CountingStream()
    handler = TurnBatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test_log_batching.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    handler.close()


def test_one_turns_lines_are_one_write_after_the_turn(logged) -> None:
    """Three requests answered in one turn: nothing is written during the turn, then all three
    lines in one write, in the order they were logged."""
    logger, stream = logged
    seen_during_turn: list[str] = []

    async def main() -> None:
        for i in range(3):
            logger.info("request %d", i)
        seen_during_turn.append(stream.getvalue())
        await asyncio.sleep(0)  # the turn ends; the flush scheduled for it runs
        await asyncio.sleep(0)

    asyncio.run(main())
    assert seen_during_turn == [""]
    assert stream.writes == ["request 0\nrequest 1\nrequest 2\n"]


def test_each_turn_is_written_before_the_next_one_logs(logged) -> None:
    """A line never waits for a later request: every turn's lines are out after that turn."""
    logger, stream = logged

    async def main() -> list[str]:
        after_each: list[str] = []
        for i in range(3):
            logger.info("turn %d", i)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            after_each.append(stream.getvalue())
        return after_each

    assert asyncio.run(main()) == ["turn 0\n", "turn 0\nturn 1\n", "turn 0\nturn 1\nturn 2\n"]


def test_off_the_loop_a_line_is_written_at_once_after_those_kept(logged) -> None:
    """The writer thread's errors are written as they happen, and never ahead of a request
    line logged before them."""
    logger, stream = logged

    async def main() -> str:
        logger.info("request line")
        thread = threading.Thread(target=logger.error, args=("writer thread fault",))
        thread.start()
        thread.join()
        return stream.getvalue()

    assert asyncio.run(main()) == "request line\nwriter thread fault\n"
    logger.info("start-up line")  # no loop at all
    assert stream.getvalue().endswith("writer thread fault\nstart-up line\n")


def _log_as_the_loop_stops(logger: logging.Logger, message: str) -> None:
    """Log on a loop that stops in the same turn, before the flush it scheduled can run."""
    loop = asyncio.new_event_loop()
    loop.call_soon(lambda: (logger.info(message), loop.stop()))
    loop.run_forever()
    loop.close()


def test_lines_kept_when_the_loop_stops_are_written_on_flush(logged) -> None:
    """A loop that stops before its flush runs loses nothing: another loop's first line writes
    them first, and logging.shutdown flushes every handler at exit."""
    logger, stream = logged
    _log_as_the_loop_stops(logger, "last request")
    assert stream.getvalue() == ""

    async def next_loop() -> None:
        logger.info("first of the next loop")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(next_loop())
    assert stream.getvalue() == "last request\nfirst of the next loop\n"

    _log_as_the_loop_stops(logger, "kept until exit")
    assert stream.getvalue().endswith("loop\n")
    logger.handlers[0].flush()  # what logging.shutdown does for each handler at exit
    assert stream.getvalue().endswith("first of the next loop\nkept until exit\n")


def test_a_record_that_cannot_be_formatted_does_not_break_the_request(logged, capsys) -> None:
    """As StreamHandler: a bad record is reported on stderr, and the next line is written."""
    logger, stream = logged
    handler = logger.handlers[0]

    def record(message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord(logger.name, logging.INFO, __file__, 0, message, args, None)

    async def main() -> None:
        handler.handle(record("%d", "not a number"))
        handler.handle(record("next request"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert stream.getvalue() == "next request\n"
    assert "Logging error" in capsys.readouterr().err
