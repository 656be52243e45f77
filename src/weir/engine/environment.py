"""The plugin environment: the virtualenv plugins run in, and installing packages.

The venv (`--virtual-env-location`, default `<plugin-dir>/.venv`) is created at
engine start when missing, without pip so that start-up stays fast; pip is
bootstrapped (`ensurepip`) the first time something is installed. Installs run
`<venv>/bin/python -m pip install ...` and, unlike the reference, a failing pip is
reported with its output instead of being ignored.

Workers run the venv's Python when it exists and matches the server's Python
version (the worker needs the server's pyarrow); otherwise the server's own
interpreter, with the venv's site-packages first on the path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from weir.engine.plugin_env import PluginEnvPolicy
from weir.errors import ProcessingEngineError, WeirError

log = logging.getLogger("weir.engine")

PIP_TIMEOUT_S = 30 * 60.0
_OUTPUT_TAIL = 4000


class PackageInstallDisabled(WeirError):
    """`--package-manager disabled` (HTTP 403)."""

    def __init__(self) -> None:
        super().__init__("Package installation has been disabled. Contact your administrator "
                         "for more information.")


def _install_error(detail: str) -> ProcessingEngineError:
    return ProcessingEngineError(f"error installing python packages: {detail}")


class PluginEnvironment:
    def __init__(self, venv_dir: Path | None, package_manager: str = "discover",
                 env_policy: PluginEnvPolicy | None = None) -> None:
        self.venv_dir = venv_dir.resolve() if venv_dir is not None else None
        self.package_manager = package_manager
        #: what of the server's environment installs see (never the server's secrets)
        self.env_policy = env_policy or PluginEnvPolicy()
        self._install_lock = asyncio.Lock()
        self.error: str | None = None

    @property
    def python(self) -> Path | None:
        if self.venv_dir is None:
            return None
        for name in ("bin/python3", "bin/python", "Scripts/python.exe"):
            p = self.venv_dir / name
            if p.exists():
                return p
        return None

    def site_packages(self) -> Path | None:
        """The venv's site-packages for the server's Python version (may not exist)."""
        if self.venv_dir is None:
            return None
        v = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.venv_dir / "lib" / v / "site-packages"

    def venv_version_matches(self) -> bool:
        """True if the venv was made for the server's major.minor Python version."""
        if self.venv_dir is None:
            return False
        try:
            text = (self.venv_dir / "pyvenv.cfg").read_text()
        except OSError:
            return False
        m = re.search(r"^\s*version(?:_info)?\s*=\s*(\d+)\.(\d+)", text, re.MULTILINE)
        if m is None:
            return False
        return (int(m.group(1)), int(m.group(2))) == sys.version_info[:2]

    def worker_python(self) -> tuple[str, list[str]]:
        """(interpreter for workers, paths to put before the server's packages)."""
        py = self.python
        if py is not None and self.venv_version_matches():
            return str(py), []
        if py is not None:
            log.warning("the plugin venv %s was made for another Python version than the "
                        "server's %d.%d; plugins run with the server's Python", self.venv_dir,
                        *sys.version_info[:2])
        sp = self.site_packages()
        return sys.executable, [str(sp)] if sp is not None else []

    def env_vars(self) -> dict[str, str]:
        """VIRTUAL_ENV and PATH as an activated venv would have them."""
        if self.venv_dir is None:
            return {}
        return {"VIRTUAL_ENV": str(self.venv_dir),
                "PATH": f"{self.venv_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}

    # ---- creation --------------------------------------------------------------------

    async def ensure(self) -> bool:
        """Create the venv if it is missing. A failure is logged, never raised."""
        if self.venv_dir is None or self.python is not None:
            return self.python is not None
        try:
            await asyncio.to_thread(self._create)
        except (OSError, subprocess.SubprocessError, ProcessingEngineError) as e:
            self.error = f"cannot create the plugin virtualenv at {self.venv_dir}: {e}"
            log.error("%s; plugins will run with the server's Python", self.error)
            return False
        log.info("created the plugin virtualenv at %s", self.venv_dir)
        return True

    def _create(self) -> None:
        assert self.venv_dir is not None
        self.venv_dir.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv_dir)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise ProcessingEngineError((proc.stderr or proc.stdout).strip()[-_OUTPUT_TAIL:])

    # ---- installation ----------------------------------------------------------------

    async def install_packages(self, packages: list[str]) -> str:
        """`pip install <packages>` into the venv; returns pip's output."""
        self._check_enabled()
        for p in packages:
            if not p.strip() or p.strip().startswith("-"):
                raise _install_error(f"invalid package specification {p!r}")
        return await self._pip(["install", *[p.strip() for p in packages]])

    async def install_requirements(self, requirements_location: str) -> str:
        """`pip install -r <file>` (a path on the server)."""
        self._check_enabled()
        if not requirements_location or not requirements_location.strip():
            raise _install_error("requirements_location is empty")
        return await self._pip(["install", "-r", requirements_location])

    def _check_enabled(self) -> None:
        """`--package-manager disabled` refuses every install (403) before anything else."""
        if self.package_manager == "disabled":
            raise PackageInstallDisabled()

    async def _run(self, cmd: list[str], timeout: float) -> tuple[int, str]:
        return await _run(cmd, timeout, self.env_policy.for_installs(os.environ))

    async def _pip(self, args: list[str]) -> str:
        if self.venv_dir is None:
            raise _install_error("Plugin environment management is disabled")
        async with self._install_lock:
            if self.python is None:
                await asyncio.to_thread(self._create)
            py = str(self.python)
            check = await self._run([py, "-m", "pip", "--version"], 120)
            if check[0] != 0:
                code, out = await self._run([py, "-m", "ensurepip", "--default-pip"], 600)
                if code != 0:
                    raise _install_error(f"pip is not available in {self.venv_dir} and "
                                         f"ensurepip failed:\n{out[-_OUTPUT_TAIL:]}")
            code, out = await self._run(
                [py, "-m", "pip", "--disable-pip-version-check", *args], PIP_TIMEOUT_S)
            if code != 0:
                raise _install_error(f"pip exited with code {code}:\n{out[-_OUTPUT_TAIL:]}")
            log.info("pip %s: done", " ".join(args))
            return out


async def _run(cmd: list[str], timeout: float, env: dict[str, str]) -> tuple[int, str]:
    """Run a command; (exit code, combined output). A timeout counts as a failure."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    except OSError as e:
        raise _install_error(f"cannot run {cmd[0]}: {e}") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{' '.join(cmd)} did not finish within {int(timeout)}s"
    return proc.returncode or 0, out.decode("utf-8", "replace")
