"""The study store: processes that open one new database at the same moment all get it."""

import multiprocessing

from vissearch.study import store


def _open(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        store.make_storage(url)
        results.put("ok")
    except Exception as err:  # noqa: BLE001 - the parent reports what each process met
        results.put(f"{type(err).__name__}: {err}")


def test_processes_opening_a_new_sqlite_study_together_all_get_it(tmp_path):
    """Two ``run`` commands started together on a new study: each creates Optuna's tables, and
    without a second try one of them met "table ... already exists" (9 rounds in 10 here)."""
    ctx = multiprocessing.get_context("spawn")  # no TensorFlow threads carried into a fork
    for round_ in range(2):
        url = f"sqlite:///{tmp_path}/round{round_}.db"
        n = 6
        barrier, results = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(url, barrier, results)) for _ in range(n)]
        for p in procs:
            p.start()
        answers = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert answers == ["ok"] * n, answers
