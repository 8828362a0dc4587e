"""Test runs leave no tabcast-test-*/-redis-*/-cluster-* directories behind in /tmp (issue 13)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SESSION = """
import sys
from tests.support.processes import RedisProcess, TabcastProcess, temp_dir
server = TabcastProcess().start()
redis = RedisProcess().start()
print(server.var_dir, redis.dir, temp_dir("tabcast-cluster-"), flush=True)
server.stop()
redis.stop()
"""


def _run(code: str, tmp_path, **env) -> list[Path]:
    environment = {**os.environ, "TMPDIR": str(tmp_path), **env}  # mkdtemp under a dir of this test
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return [Path(p) for p in result.stdout.split()]


def test_servers_and_redis_dirs_are_removed_when_the_test_process_ends(tmp_path):
    dirs = _run(SESSION, tmp_path)
    assert len(dirs) == 3 and all(d.parent == tmp_path for d in dirs)
    assert [d.name.split("-")[1] for d in dirs] == ["test", "redis", "cluster"]
    assert not any(d.exists() for d in dirs), list(tmp_path.iterdir())


def test_they_can_be_kept_for_a_post_mortem(tmp_path):
    dirs = _run(SESSION, tmp_path, TABCAST_KEEP_TEST_DIRS="1")
    assert all(d.is_dir() for d in dirs)
    assert list(dirs[0].glob("server-*.log"))  # the server's log is there to read

