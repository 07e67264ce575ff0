"""One image store for every machine: study.artifacts on a real S3-protocol server.

``VISSEARCH_TEST_S3`` holds the endpoint of a server (CI starts moto's on 127.0.0.1); without
it the test starts one itself when moto is installed. Workers write through PostgreSQL when
``VISSEARCH_TEST_PG`` is set (CI), else through one SQLite file outside both machines' results
folders (a study database both machines reach, as a PostgreSQL server would be).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from vissearch import cli, runconfig, runner, trials
from vissearch.errors import StoreUnreachable, UserError
from vissearch.study import objectstore, store
from vissearch.study.leaderboards import leaderboard

CLI = [sys.executable, "-m", "vissearch"]
PG = os.environ.get("VISSEARCH_TEST_PG")
SECRET = "s3-secret-key-never-shown-42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto(port: int) -> subprocess.Popen:
    """moto's S3 server on 127.0.0.1:port, once it accepts connections."""
    server = shutil.which("moto_server")
    if server is None:
        pytest.skip("set VISSEARCH_TEST_S3 or install moto[server] (CI does)")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc


@pytest.fixture(scope="module")
def endpoint():
    url = os.environ.get("VISSEARCH_TEST_S3")
    if url:
        yield url
        return
    port = _free_port()
    proc = _moto(port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait()


@pytest.fixture()
def aws(endpoint, monkeypatch, tmp_path):
    import boto3

    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "vissearch-test",
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = f"vis-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    store._s3.cache_clear()
    return bucket, env


def test_urls_are_checked_in_one_line():
    assert objectstore.check_url("s3://my-bucket/some/prefix/") == "s3://my-bucket/some/prefix"
    for bad in ("s3://", "http://bucket/x", "s3://Bad_Bucket", "s3://b/../x",
                "s3://key:secret@bucket"):
        with pytest.raises(ValueError, match="use s3://BUCKET or s3://BUCKET/PREFIX"):
            objectstore.check_url(bad)


def test_credentials_written_into_the_url_are_never_repeated():
    for bad in ("s3://AKIAKEY:wJalr/XUtnFEMI-secret@bucket/p", "s3://wJalr-secret@bucket"):
        with pytest.raises(ValueError, match=r"study.artifacts 's3://\*\*\*@bucket") as err:
            objectstore.check_url(bad)
        assert "secret" not in str(err.value) and "AKIAKEY" not in str(err.value)
    raw = {"study": {"name": "x", "artifacts": "s3://AKIAKEY:wJalr-secret@bucket/p"},
           "model": {"name": "zoo/shapes"}, "target": {"kind": "class", "indices": [0]}}
    with pytest.raises(UserError) as err:
        runconfig.from_mapping(raw)
    assert "secret" not in str(err.value) and "AKIAKEY" not in str(err.value)


def test_two_workers_write_to_s3_and_a_report_elsewhere_shows_every_image(
        aws, tmp_path, tiny_path):
    bucket, env = aws
    name = f"s3-{uuid.uuid4().hex[:8]}"
    shared = PG or f"sqlite:///{tmp_path / 'shared.db'}"  # not under machine-a, deleted below
    raw = {"study": {"name": name, "seed": 5, "n_trials": 6, "storage": shared,
                     "results": str(tmp_path / "machine-a"),
                     "artifacts": f"s3://{bucket}/studies/{name}"},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [0, 1]},
           "render": {"size": 16, "steps": 20},
           "search": {"lr": {"log_uniform": [0.5, 20.0]}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(json.dumps(raw))
    ran = subprocess.run([*CLI, "run", str(path), "--workers", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert ran.returncode == 0, ran.stderr[-2000:]
    import boto3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=bucket, Prefix=f"studies/{name}/").get("Contents", [])]
    assert len(keys) == 6 * 3  # every trial's grid and two targets, uploaded
    shutil.rmtree(tmp_path / "machine-a")  # the report runs where no image was written
    other = {**raw, "study": {**raw["study"], "results": str(tmp_path / "machine-b")}}
    path.write_text(json.dumps(other))
    cache = tmp_path / "cache-b"
    rep = subprocess.run([*CLI, "report", str(path), "--out", str(tmp_path / "report")],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env, "XDG_CACHE_HOME": str(cache)})
    assert rep.returncode == 0, rep.stderr[-2000:]
    cfg = runconfig.from_mapping(other, str(path))
    study = store.open_study(name, shared, str(tmp_path / "machine-b"))
    for t in study.get_trials():
        assert (tmp_path / "report" / "images" / f"trial_{t.number}_grid.png").stat().st_size
        assert (tmp_path / "report" / "images" / f"trial_{t.number}_target_1.png").is_file()
    said = ran.stdout + ran.stderr + rep.stdout + rep.stderr
    stored = json.dumps([study.user_attrs] + [t.user_attrs for t in study.get_trials()])
    page = (tmp_path / "report" / "index.html").read_text()
    for text in (said, stored, page):
        assert SECRET not in text and "vissearch-test" not in text
    assert cfg.study.artifacts == f"s3://{bucket}/studies/{name}"
    again = subprocess.run([*CLI, "reproduce", str(path), "--trial", "best", "--out",
                            str(tmp_path / "again")], capture_output=True, text=True,
                           timeout=600, env={**os.environ, **env, "XDG_CACHE_HOME": str(cache)})
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    assert "3 of 3 identical to the stored ones" in again.stdout


def test_an_unreachable_bucket_is_one_line_before_any_trial(aws, tmp_path, tiny_path):
    raw = {"study": {"name": "nobucket", "results": str(tmp_path),
                     "artifacts": "s3://no-such-bucket-here/x"},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [0]}, "render": {"size": 16, "steps": 2}}
    with pytest.raises(UserError, match="study.artifacts s3://no-such-bucket-here/x: cannot "
                                        "reach the bucket"):
        store.check_results(runconfig.from_mapping(raw).study)


def test_an_outage_stops_the_run_in_one_line_and_its_trials_run_again_uncounted(
        tmp_path, tiny_path, monkeypatch, capsys):
    """The server stops after the first trial is recorded: reading an image is one line naming
    the endpoint; the run stops in one line and puts the trial back, uncounted; once the server
    is back (moto keeps nothing: the bucket is made again) the same run finishes n_trials."""
    import boto3

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    for k, v in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "vissearch-test",
                 "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
                 "XDG_CACHE_HOME": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(k, v)
    store._s3.cache_clear()
    server = [_moto(port)]
    boto3.client("s3").create_bucket(Bucket="outage")
    raw = {"study": {"name": "outage", "seed": 5, "n_trials": 3, "results": str(tmp_path),
                     "artifacts": "s3://outage/p"},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [0]}, "render": {"size": 16, "steps": 4},
           "search": {"lr": {"log_uniform": [0.5, 20.0]}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(json.dumps(raw))
    cfg = runconfig.load(str(path))
    tell = trials.Recorder._tell

    def tell_then_stop(self, study, trial, **kwargs):
        tell(self, study, trial, **kwargs)
        if server[0].poll() is None:
            server[0].terminate()
            server[0].wait()

    monkeypatch.setattr(trials.Recorder, "_tell", tell_then_stop)
    try:
        with pytest.raises(StoreUnreachable, match=f"the object store at {url} does not "
                                                   "answer .*; 1 trial put back") as err:
            runner.run(cfg, progress=False)
        assert "\n" not in str(err.value)
        study = store.open_study("outage", None, str(tmp_path))
        assert runner.counted(study) == 1  # the put-back trial does not count
        with pytest.raises(StoreUnreachable, match=url):
            leaderboard(study)  # its image is not in the cache: it must be fetched
        capsys.readouterr()
        assert cli.main(["leaderboard", str(path)]) == 2
        said = capsys.readouterr().err
        assert said.startswith("error: study.artifacts s3://outage/p: the object store at "
                               f"{url} does not answer") and said.count("\n") == 1
        monkeypatch.setattr(trials.Recorder, "_tell", tell)
        server[0] = _moto(port)
        boto3.client("s3").create_bucket(Bucket="outage")
        study = runner.run(cfg, progress=False)
        assert "already finished" not in capsys.readouterr().out
        done = [t for t in study.get_trials() if runner._counts(t)]
        assert len(done) == 3 and all(t.state.name == "COMPLETE" for t in done)
        retry = [t for t in done if t.user_attrs.get("retry_of") == 1]
        assert len(retry) == 1  # the trial the outage stopped, run again with its settings
        assert retry[0].params == study.trials[1].params
        assert store.trial_file(study, retry[0].user_attrs["images"], "grid").stat().st_size
    finally:
        server[0].terminate()
        server[0].wait()
