"""Shared fixtures: the repository root and the goexec binary the tests run.

`make pytest` builds bin/goexec and sets GOEXEC; run by hand, build it first
(`make goexec`) or point GOEXEC at one.
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def goexec() -> str:
    path = os.environ.get("GOEXEC") or str(ROOT / "bin" / "goexec")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"goexec binary {path} is missing: run `make goexec` or set GOEXEC")
    return path


@pytest.fixture(scope="module")
def spark(request):
    """A local[2] SparkSession with GoCaffe's jar and plugin, one per test module."""
    from pyspark.sql import SparkSession

    jar = os.environ.get("GOCAFFE_JAR") or str(ROOT / "build" / "libs" / "gocaffe.jar")
    if not os.path.isfile(jar):
        raise RuntimeError(f"GoCaffe's jar {jar} is missing: run `make jar` or set GOCAFFE_JAR")
    s = (SparkSession.builder.master("local[2]").appName(f"gocaffe-pytest-{request.module.__name__}")
         .config("spark.jars", jar)
         .config("spark.plugins", "com.gocaffe.shim.GoCaffePlugin")
         .config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1")
         .getOrCreate())
    yield s
    s.stop()


def run(*args: str) -> str:
    """Runs a command, failing the test with its output when it fails."""
    p = subprocess.run(list(args), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout + p.stderr
