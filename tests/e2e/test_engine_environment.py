"""The plugin environment: the venv created at start, packages installed with pip
(offline: a local package with an in-tree build backend), workers running the venv's
Python with the installed packages importable."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from support.inprocess import fast_options, make_config, open_database, start_engine, write
from weir.config import ServeConfig
from weir.database import Database
from weir.engine.environment import PluginEnvironment
from weir.errors import ProcessingEngineError

pytestmark = pytest.mark.anyio

BACKEND = '''
"""A PEP 517 backend with no dependencies: builds a wheel with zipfile."""
import base64, hashlib, os, zipfile

NAME, VERSION = "weir_tinypkg", "0.1"

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    here = os.path.dirname(os.path.abspath(__file__))
    dist = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}/__init__.py": open(os.path.join(here, NAME, "__init__.py"), "rb").read(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name
'''


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tiny_package(root: Path) -> Path:
    pkg = root / "tinypkg"
    (pkg / "weir_tinypkg").mkdir(parents=True)
    (pkg / "weir_tinypkg" / "__init__.py").write_text("VALUE = 42\n")
    (pkg / "backend.py").write_text(BACKEND)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = []
        build-backend = "backend"
        backend-path = ["."]
        """))
    return pkg


async def test_venv_install_and_workers_use_it(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # never reach a package index
    config = make_config(tmp_path)
    async with open_database(config) as db:
        await write(db, "foo", "setup v=1i")  # creates foo
        await _venv_install_and_workers_use_it(db, config, tmp_path)


async def _venv_install_and_workers_use_it(db: Database, config: ServeConfig,
                                            tmp_path: Path) -> None:
    engine = await start_engine(db, fast_options(create_venv=True))
    try:
        venv = engine.files.plugin_dir / ".venv"
        assert (venv / "pyvenv.cfg").is_file()
        assert engine.environment.worker_python()[0].startswith(str(venv))

        await engine.install_packages([str(tiny_package(tmp_path))])
        with pytest.raises(ProcessingEngineError, match="pip exited with code 1") as e:
            await engine.install_packages(["weir-no-such-package-anywhere"])
        assert "weir-no-such-package-anywhere" in str(e.value)
        with pytest.raises(ProcessingEngineError, match="invalid package specification"):
            await engine.install_packages(["--index-url=http://evil"])
        req = tmp_path / "requirements.txt"
        req.write_text(f"{tiny_package(tmp_path / 'again')}\n")
        await engine.install_requirements(str(req))

        (engine.files.plugin_dir / "uses_pkg.py").write_text(textwrap.dedent("""
            import os, sys
            import weir_tinypkg
            def process_request(influxdb3_local, q, h, body, args=None):
                return {"value": weir_tinypkg.VALUE, "prefix": sys.prefix,
                        "virtual_env": os.environ.get("VIRTUAL_ENV")}
            """))
        await engine.create_trigger(database="foo", trigger_name="uses", trigger_specification=
                                    "request:uses", plugin_filename="uses_pkg.py")
        reply = await engine.handle_request("uses", {}, {}, b"")
        assert reply.status == 200, reply.body
        assert json.loads(reply.body) == {"value": 42, "prefix": str(venv),
                                          "virtual_env": str(venv)}
    finally:
        await engine.stop()


async def test_venv_failure_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = PluginEnvironment(blocker / "venv")
    assert await env.ensure() is False
    assert env.error is not None and "cannot create the plugin virtualenv" in env.error
    assert env.worker_python()[0] == sys.executable  # the server's interpreter


async def test_package_builds_do_not_see_the_servers_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package's build runs whatever code it ships: pip gets the server's environment
    minus what the server reads itself (here an object-store key) and the deny list."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-for-the-object-store")
    monkeypatch.setenv("WEIR_TEST_DENIED", "x")
    monkeypatch.setenv("NORI_API_KEY", "plugins-may-see-this")
    pkg = tiny_package(tmp_path)
    seen = tmp_path / "seen_env.json"
    # the backend notes the names of its environment while it builds
    (pkg / "backend.py").write_text(BACKEND.replace(
        "    here = os.path.dirname(os.path.abspath(__file__))\n",
        "    here = os.path.dirname(os.path.abspath(__file__))\n"
        f"    import json; open({str(seen)!r}, 'w').write(json.dumps(sorted(os.environ)))\n"))
    config = make_config(tmp_path, server_env_vars=["AWS_SECRET_ACCESS_KEY"],
                         plugin_env_deny=["WEIR_TEST_*"])
    async with open_database(config) as db:
        engine = await start_engine(db, fast_options(create_venv=True))
        try:
            await engine.install_packages([str(pkg)])
        finally:
            await engine.stop()
    names = json.loads(seen.read_text())
    assert "NORI_API_KEY" in names and "PIP_NO_INDEX" in names
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert "WEIR_TEST_DENIED" not in names
