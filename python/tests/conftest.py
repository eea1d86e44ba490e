"""A Spark standalone cluster for the Spark job's tests: a master and two
one-core workers on 127.0.0.1, started from the PySpark package's
`spark-class` and always stopped, shared by the whole session (one JVM
start). The session's driver runs with `spark.driver.maxResultSize` of
4 MiB, so every test also shows the driver gathers only aggregates."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, procs, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"spark daemon exited with {p.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"port {port} did not open in {timeout} s")


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The master's URL (`spark://127.0.0.1:PORT`)."""
    pyspark = pytest.importorskip("pyspark")
    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("spark-cluster")
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, SPARK_LOG_DIR=str(logs))
    cls = str(home / "bin" / "spark-class")
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs = []
    try:
        with open(logs / "master.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(_free_port())],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_port(port, procs)
        for i in range(2):
            with open(logs / f"worker{i}.log", "w") as log:
                procs.append(
                    subprocess.Popen(
                        [
                            cls,
                            "org.apache.spark.deploy.worker.Worker",
                            "--host",
                            "127.0.0.1",
                            "--cores",
                            "1",
                            "--memory",
                            "1g",
                            "--webui-port",
                            str(_free_port()),
                            "--work-dir",
                            str(logs / f"work{i}"),
                            url,
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield url
    finally:
        _stop(procs[::-1])


@pytest.fixture(scope="session")
def spark(cluster):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    s = (
        SparkSession.builder.master(cluster)
        .appName("claims-audit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.executor.memory", "768m")
        .config("spark.executor.cores", "1")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.maxResultSize", "4m")
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .getOrCreate()
    )
    # Both workers' executors registered before the first test.
    end = time.monotonic() + 90
    while s.sparkContext._jsc.sc().getExecutorMemoryStatus().size() < 3 and time.monotonic() < end:
        time.sleep(0.5)
    yield s
    s.stop()
