"""Where a study lives: its Optuna storage and its image artifacts. No TensorFlow.

By default a study named N keeps ``results/N.db`` (SQLite) and ``results/N/artifacts/`` (one file
per image, named by artifact id). The study records its artifact folder and its own config as
study user attributes, so it can be reopened without the config file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore

from vissearch.errors import UserError
from vissearch.files import atomic_write, write_stream
from vissearch.settings.studyspec import StudySpec, is_database
from vissearch.study import objectstore

HEARTBEAT_S = 2  # a running trial's worker writes a heartbeat this often
GRACE_S = 8  # a RUNNING trial without a heartbeat this long is failed and its settings retried

# What blind readers said of a trial's images (``readers score``) and a person's rating in the
# dashboard (``dashboard --rate``): trial user attributes, beside the judge's scores.
READERS = ("readers_named", "readers_named3", "readers_confident", "readers_n",
           "readers_rating")


@contextlib.contextmanager
def quiet_experimental():
    """Optuna marks its retry helpers experimental; that is no news to a user at every trial."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def make_storage(url: str) -> optuna.storages.BaseStorage | str:
    """An RDB storage (SQLite, PostgreSQL, MySQL) with heartbeats, so a trial whose worker was
    killed is marked FAIL and its settings run again; other URLs pass through to Optuna."""
    if not is_database(url):
        return url
    if url.startswith("sqlite:///"):
        _make_folder(Path(url.removeprefix("sqlite:///")).parent, "study.storage")
    try:
        return _first_open(url)
    except ImportError:
        raise UserError(f"storage {url.split('@')[-1]!r} needs its database driver; for "
                        "PostgreSQL: pip install -e '.[postgres]' (psycopg 3)") from None
    except Exception as err:  # SQLAlchemy: a file that is no database, a server not there
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise UserError(f"study.storage {shown(url)} cannot be opened: "
                        f"{type(err).__name__}: {first}") from None


# what a process meets when another creates the same new database's tables at the same moment
# (SQLAlchemy's create_all checks, then creates: sqlalchemy/sqlalchemy#4936)
_CREATION_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key",
                  "database is locked")


def _first_open(url: str, tries: int = 6) -> optuna.storages.RDBStorage:
    """``_rdb(url)``, tried again while another process is creating the same database's tables
    (two ``run`` commands started together on a new study): Optuna's table creation, version
    row and alembic stamp each do nothing when they find the others' work done."""
    for attempt in range(tries - 1):
        try:
            with quiet_experimental():
                return _rdb(url)
        except Exception as err:
            if not any(m in str(err) for m in _CREATION_RACE):
                raise
            time.sleep(0.05 * 2 ** attempt * (1 + random.random()))
    with quiet_experimental():
        return _rdb(url)


def _make_folder(folder: Path, key: str) -> Path:
    """Create ``folder`` (and its parents); a place that cannot hold it is one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise UserError(f"{key}: cannot create the folder {str(folder)[:200]!r}: "
                        f"{reason}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{key}: the folder {str(folder)[:200]!r} is not writable")
    return folder


def _rdb(url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=3
        ),
        engine_kwargs={"pool_pre_ping": True} if url.startswith("postgresql") else None,
    )


class AnnotatingStorage(optuna.storages.RDBStorage):
    """An RDB storage that also sets user attributes on finished trials: readers' figures and
    ratings annotate a trial, they do not change its result. Everything else is Optuna's."""

    _annotating = False

    def check_trial_is_updatable(self, trial_id: int, trial_state) -> None:
        if not self._annotating:
            super().check_trial_is_updatable(trial_id, trial_state)

    def set_trial_user_attr(self, trial_id: int, key: str, value) -> None:
        self._annotating = True
        try:
            super().set_trial_user_attr(trial_id, key, value)
        finally:
            self._annotating = False


def annotating_storage(url: str) -> AnnotatingStorage:
    """The storage of ``url`` for annotating finished trials (SQLite, PostgreSQL, MySQL)."""
    if not is_database(url):
        raise UserError(f"storage {shown(url)}: readers' figures and ratings are written to "
                        "database storages only (SQLite, PostgreSQL, MySQL)")
    with quiet_experimental():
        return AnnotatingStorage(url, engine_kwargs={"pool_pre_ping": True}
                                 if url.startswith("postgresql") else None)


def storage_url(study: StudySpec | str, storage: str | None = None,
                results: str = "results", create: bool = True) -> str:
    """The Optuna storage URL of a study: ``study.storage``, else ``results/NAME.db``.

    ``study`` is the config's study section, or a study name with its ``storage`` and
    ``results`` given apart.
    """
    if isinstance(study, StudySpec):
        study, storage, results = study.name, study.storage, study.results
    if storage:
        return storage
    folder = _make_folder(Path(results), "study.results") if create else Path(results)
    return f"sqlite:///{folder / study}.db"


def shown(url: str) -> str:
    """A storage URL fit to print: any password hidden."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL
        return url


def artifact_dir(name: str, results: str = "results", create: bool = True) -> Path:
    path = (Path(results) / name / "artifacts").resolve()
    root = Path(results).resolve()
    if root not in path.parents:
        raise UserError(f"study.name {name!r} would write outside {root}")
    return _make_folder(path, "study.results") if create else path


def check_results(study: StudySpec) -> None:
    """The study's results folder and its storage can be written, and its object store reached
    (before any model loads)."""
    storage_url(study)  # the results folder (created: it is where the run writes)
    artifact_dir(study.name, study.results, create=False)  # made once the study exists
    if study.artifacts:
        _s3(study.artifacts).check()


@functools.cache
def _s3(url: str) -> objectstore.S3Store:
    return objectstore.S3Store(url)


def artifact_store(study: optuna.Study):
    """Where the study's images go and come from: its object store, else its folder."""
    url = study.user_attrs.get("artifacts")
    if objectstore.is_remote(url):
        return _s3(url)
    return AtomicArtifactStore(_make_folder(Path(study.user_attrs["artifact_dir"]),
                                            "study.results"))


class AtomicArtifactStore(FileSystemArtifactStore):
    """Optuna's file-system store, but a file appears under its id only once fully written,
    and it can give a stored file a readable name in the study's folder as well."""

    def __init__(self, base_path: str | Path):
        super().__init__(base_path)
        self.base = Path(base_path)

    def name(self, artifact_id: str, relative: str) -> Path:
        """Make the artifact also appear as ``results/NAME/<relative>`` (a hard link, or a
        copy where the filesystem has none), atomically."""
        source, target = self.base / artifact_id, self.base.parent / relative

        def link(tmp: str) -> None:
            Path(tmp).unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)

        return atomic_write(target, link)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        write_stream(self.base / artifact_id, content_body)


def open_study(name: str, storage: str | None = None, results: str = "results") -> optuna.Study:
    """Load an existing study; a missing one is a user error naming the storage."""
    url = storage_url(name, storage, results, create=False)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        # opening a missing SQLite file would create it, empty
        raise UserError(f"no study named {name!r} in {shown(url)}; run it first")
    try:
        return optuna.load_study(study_name=name, storage=make_storage(url))
    except KeyError:
        raise UserError(f"no study named {name!r} in {shown(url)}; run it first") from None


def trial_count(study: StudySpec) -> int:
    """How many trials the config's study has; 0 when it does not exist yet (creating nothing:
    no SQLite file, no study)."""
    url = storage_url(study, create=False)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return 0
    try:
        found = optuna.load_study(study_name=study.name, storage=make_storage(url))
    except KeyError:
        return 0
    return len(found.get_trials(deepcopy=False))


def trial_file(study: optuna.Study, images: dict, key: str) -> Path | None:
    """A trial's image by key (``grid`` or a target index) under its readable name in
    ``results/NAME/trials/``, else under its artifact id; None when it is not on disk."""
    relative = images.get("files", {}).get(key)
    base = study.user_attrs.get("artifact_dir")
    if relative and base and not objectstore.is_remote(study.user_attrs.get("artifacts")):
        path = _inside(Path(base).parent, str(relative))
        if path is not None and path.is_file():
            return path
    aid = images.get("grid") if key == "grid" else images.get("targets", {}).get(key)
    return artifact_path(study, aid)


def _inside(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` if it stays inside ``folder`` (no ``..``, no absolute path, no
    link out of it), else None: a study record is data, whoever wrote it."""
    if "\0" in relative or len(relative) > 1000:
        return None
    root = folder.resolve()
    path = (root / relative).resolve()
    return path if root in path.parents else None


def trial_folder(study: optuna.Study, number: int) -> Path | None:
    """A trial's folder of readable image names (``results/NAME/trials/NNNN``), if local."""
    base = study.user_attrs.get("artifact_dir")
    if not base or objectstore.is_remote(study.user_attrs.get("artifacts")):
        return None
    return _inside(Path(base).parent, f"trials/{int(number):04d}")


def artifact_path(study: optuna.Study, artifact_id: str | None) -> Path | None:
    """The image file of an artifact id, or None when it is not on disk."""
    if not artifact_id:
        return None
    url = study.user_attrs.get("artifacts")
    if objectstore.is_remote(url):
        return _s3(url).fetch(str(artifact_id))
    base = study.user_attrs.get("artifact_dir")
    if not base:
        return None
    path = _inside(Path(base), str(artifact_id))
    return path if path is not None and path.is_file() else None


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The completed trials, best first: by the first objective, ties broken by the second,
    then by trial number. This order is what "best" means everywhere (the leaderboard, the
    report, reproduce, the run's summary); the best is always on the Pareto front."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    signs = [-1 if d == optuna.study.StudyDirection.MAXIMIZE else 1 for d in study.directions]
    return sorted(complete, key=lambda t: (*(s * v for s, v in zip(signs, t.values,
                                                                   strict=True)), t.number))


def preferred(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """:func:`ranked`, except that where readers have judged trials (``readers score``, or a
    rating in the dashboard) the trials they named most come first: what people read wins over
    what the judge scores. Trials without readers' figures keep their order after them."""
    trials = ranked(study)

    def named(t: optuna.trial.FrozenTrial) -> float | None:
        a = t.user_attrs
        if a.get("readers_n"):
            return float(a["readers_named"])
        rating = a.get("readers_rating")
        return float(rating) if isinstance(rating, int | float) else None

    judged = [t for t in trials if named(t) is not None]
    if not judged:
        return trials
    order = sorted(judged, key=lambda t: -named(t))  # stable: ties keep the judge's order
    return order + [t for t in trials if named(t) is None]


def find_trial(study: optuna.Study, which: str) -> optuna.trial.FrozenTrial:
    """``best`` (the first of :func:`ranked`) or a trial number."""
    if which == "best":
        best = ranked(study)
        if not best:
            raise UserError(f"study {study.study_name!r} has no completed trial yet")
        return best[0]
    try:
        number = int(which)
    except ValueError:
        raise UserError(f"--trial {which!r}: use best or a trial number") from None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise UserError(f"--trial {number}: the study has trials 0..{len(trials) - 1}")
    return trials[number]
