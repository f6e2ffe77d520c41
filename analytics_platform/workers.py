"""Jobs on DuckDB connections in threads of this process: the events step's batches
(defs/events/assets.py) and the warehouse store's days (storage.py).

Why threads: DuckDB runs a statement on all cores, but the work around it (planning, Arrow,
Python) runs on one, so one connection left part of the 2 cores idle: 1.65 busy in the events
step, 1.50 in the publish's sorted inserts (issue 21, docs/BENCHMARKS.md). Two connections (or
cursors of one database), each taking the next job when done with one, keep both busy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Generic, TypeVar

import duckdb

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class Worker(Generic[J, R]):
    """One worker: its connection (interrupted when another worker fails, closed once all have
    stopped), what it does with a job, and what it does after its last job when no worker
    failed (a commit)."""

    con: duckdb.DuckDBPyConnection
    do: Callable[[J], R]
    finish: Callable[[], object] | None = None


def run_jobs(jobs: Sequence[J], workers: int, start: Callable[[int, ExitStack], Worker[J, R]],
             done: Callable[[R], None] | None = None, name: str = "worker") -> list[R]:
    """``jobs`` on ``min(workers, len(jobs))`` threads, each taking the next job when done with
    one; their results in the jobs' order.

    ``start(w, stack)`` makes worker ``w`` on its thread; what it enters on ``stack`` (a
    prefetch thread) is left when the worker stops. ``done(result)`` is called on this thread
    as each job ends, while none has failed (progress). The first error stops the other workers
    (their statement interrupted, no job started after it) and is raised here once all have
    stopped; so is an exception on this thread while it waits (Dagster stopping the run) or
    from ``done``. The connections are closed at the end, whatever happened (an uncommitted
    transaction rolls back)."""
    results: list[R | None] = [None] * len(jobs)
    todo = iter(range(len(jobs)))
    lock = threading.Lock()
    cons: list[duckdb.DuckDBPyConnection] = []
    errors: list[BaseException] = []
    ended: queue.Queue[int | None] = queue.Queue()

    def stop(e: BaseException) -> None:
        """Keep the first error, and interrupt every worker's statement on it."""
        with lock:
            first = not errors
            errors.append(e)
            others = list(cons)
        if first:
            for other in others:
                other.interrupt()

    def work(w: int) -> None:
        try:
            with ExitStack() as stack:
                with lock:
                    if errors:
                        return
                    worker = start(w, stack)
                    cons.append(worker.con)
                while True:
                    with lock:
                        i = None if errors else next(todo, None)
                    if i is None:
                        break
                    results[i] = worker.do(jobs[i])
                    ended.put(i)
                if worker.finish is not None and not errors:
                    worker.finish()
        except BaseException as e:  # raised on the calling thread, below
            stop(e)
        finally:
            ended.put(None)  # this worker has stopped

    threads = [threading.Thread(target=work, args=(w,), name=f"{name}-{w}", daemon=True)
               for w in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    running = len(threads)
    try:
        while running:
            i = ended.get()
            if i is None:
                running -= 1
            elif done is not None and not errors:
                done(results[i])  # type: ignore[arg-type]  # a job that ended has its result
    except BaseException as e:  # the run was stopped (Dagster raises here), or done failed
        stop(e)
        raise
    finally:
        for t in threads:
            t.join()
        for c in cons:
            c.close()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]  # every job ran
