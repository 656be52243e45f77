"""Finding plugin code on the server side: local files and packages confined to the
plugin directory, `gh:` plugins fetched from the plugin repository, uploads, and a
create-time check that the plugin defines the trigger's entry point.

The worker loads and runs the code; this module only decides *which* code, and
refuses anything outside the plugin directory.
"""

from __future__ import annotations

import ast
import hashlib
import http
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from weir.engine.plugin_api import ENTRY_POINTS, missing_entry_point_message
from weir.errors import PluginError

log = logging.getLogger("weir.engine")

GH_PREFIX = "gh:"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_GH_CACHE_TTL_S = 60.0


@dataclass(frozen=True)
class PluginRef:
    """Resolved plugin code: a single file, a package directory, or fetched source.

    `name` is the `plugin_filename` as the trigger gives it.
    """

    kind: str  # "file" | "package" | "source"
    name: str
    path: Path | None = None
    code: str | None = None
    url: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The form sent to a worker."""
        return {"kind": self.kind, "name": self.name,
                "path": str(self.path) if self.path is not None else None,
                "code": self.code}

    def source_for_check(self) -> str | None:
        if self.kind == "source":
            return self.code
        if self.path is None:
            return None
        target = self.path / "__init__.py" if self.kind == "package" else self.path
        try:
            return target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None


# a gh: name is a path inside the plugin repository: plain segments only, so that no
# `..`, `//host`, `?`, `#`, `%2e` or `\\` can turn the URL into another path or host
_GH_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")


def _traversal(filename: str) -> PluginError:
    return PluginError(f"Path traversal detected: plugin filename '{filename}' attempts to "
                       "access files outside the plugin directory")


class PluginFiles:
    """The plugin directory: resolution, listing and uploads, always confined to it."""

    def __init__(self, plugin_dir: Path | None, plugin_repo: str,
                 fetch_timeout: float = 30.0) -> None:
        self.plugin_dir = plugin_dir.resolve() if plugin_dir is not None else None
        self.plugin_repo = plugin_repo
        self.fetch_timeout = fetch_timeout
        self._gh_cache: dict[str, tuple[float, str]] = {}

    # ---- confinement -----------------------------------------------------------------

    def require_dir(self) -> Path:
        if self.plugin_dir is None:
            raise PluginError("Node not configured with plugin directory")
        return self.plugin_dir

    def confine(self, filename: str) -> Path:
        """The absolute path of `filename` inside the plugin dir; refuses `..`, absolute
        paths, drive prefixes and symlinks that lead outside."""
        root = self.require_dir()
        name = filename.rstrip("/")
        if "\x00" in name:  # no file can have this name (and pathlib raises ValueError)
            raise PluginError(f"reading plugin file: invalid plugin filename {filename!r}: "
                              "it contains a NUL byte")
        if (not name or name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name)
                or os.path.isabs(name)):
            raise _traversal(filename)
        parts = set(PurePosixPath(name).parts) | set(PureWindowsPath(name).parts)
        if ".." in parts:
            raise _traversal(filename)
        candidate = (root / name).resolve()
        if candidate != root and root not in candidate.parents:
            raise _traversal(filename)
        return candidate

    # ---- resolution ------------------------------------------------------------------

    async def resolve(self, filename: str) -> PluginRef:
        """Find the plugin now; raises PluginError with the reference's messages."""
        if filename.startswith(GH_PREFIX):
            repo_path = filename[len(GH_PREFIX):]
            if not _GH_PATH.fullmatch(repo_path):
                raise PluginError(
                    f"invalid plugin name '{filename}': a gh: name is a path inside the plugin "
                    "repository (segments of letters, digits, '_', '-' and '.', joined by '/')")
            url = self.github_url(repo_path)
            return PluginRef(kind="source", name=filename, code=await self._fetch(url), url=url)
        path = self.confine(filename)
        if not path.exists() and path.suffix != ".py" and path.with_name(path.name + ".py").is_file():
            path = path.with_name(path.name + ".py")  # `--plugin my_plugin` names my_plugin.py
        if path.is_dir():
            if not (path / "__init__.py").is_file():
                raise PluginError(
                    f"reading plugin file: Multi-file plugin directory must contain "
                    f"__init__.py: {path}")
            return PluginRef(kind="package", name=filename, path=path)
        if not path.is_file():
            raise PluginError(f"reading plugin file: Plugin not found: {path}")
        return PluginRef(kind="file", name=filename, path=path)

    def github_url(self, path: str) -> str:
        repo = self.plugin_repo if self.plugin_repo.endswith("/") else self.plugin_repo + "/"
        return repo + path.lstrip("/")

    def _disk_cache_path(self, url: str) -> Path | None:
        if self.plugin_dir is None:
            return None
        digest = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.plugin_dir / ".weir-cache" / "gh" / f"{digest}.py"

    async def _fetch(self, url: str) -> str:
        """GET a `gh:` plugin. Recent fetches are reused (create-time check + start); when
        the repository cannot be reached, the last copy fetched is used, with a warning."""
        hit = self._gh_cache.get(url)
        if hit is not None and time.monotonic() - hit[0] < _GH_CACHE_TTL_S:
            return hit[1]
        cached = self._disk_cache_path(url)
        import httpx  # here, not at the top: ~0.1 s a server without `gh:` plugins never needs
        try:
            async with httpx.AsyncClient(timeout=self.fetch_timeout,
                                         follow_redirects=True) as client:
                resp = await client.get(url)
        except httpx.HTTPError as e:
            if cached is not None and cached.is_file():
                log.warning("cannot reach the plugin repository (%s); using the copy of %s "
                            "fetched earlier", e, url)
                return cached.read_text(encoding="utf-8")
            raise PluginError(f"error fetching plugin from repository: {e} {url}") from None
        if not 200 <= resp.status_code < 300:
            try:
                phrase = http.HTTPStatus(resp.status_code).phrase
            except ValueError:
                phrase = resp.reason_phrase
            raise PluginError(f"error fetching plugin from repository: {resp.status_code} "
                              f"{phrase} {url}")
        code = resp.text
        self._gh_cache[url] = (time.monotonic(), code)
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(code, encoding="utf-8")
                tmp.replace(cached)
            except OSError as e:
                log.warning("cannot keep a copy of %s: %s", url, e)
        return code

    # ---- listing (system.plugin_files) -----------------------------------------------

    def list_files(self, plugin_filename: str) -> list[tuple[str, str, int, int]]:
        """(file_name, absolute path, size, mtime ms) for a local plugin; [] for `gh:` or
        missing plugins."""
        if plugin_filename.startswith(GH_PREFIX) or self.plugin_dir is None:
            return []
        try:
            path = self.confine(plugin_filename)
        except PluginError:
            return []
        if path.is_file():
            st = path.stat()
            return [(plugin_filename, str(path), st.st_size, int(st.st_mtime * 1000))]
        if not path.is_dir():
            return []
        rows = []
        for f in sorted(python_files(path)):
            st = f.stat()
            rows.append((f.relative_to(path).as_posix(), str(f), st.st_size,
                         int(st.st_mtime * 1000)))
        return rows

    # ---- uploads ---------------------------------------------------------------------

    def write_file(self, relative: str, content: str) -> Path:
        """Create or overwrite `<plugin-dir>/<relative>`, making parent directories."""
        path = self.confine(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".weir-tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
        return path

    def replace_for_trigger(self, plugin_filename: str, content: str) -> Path:
        """Overwrite a trigger's plugin file (its `__init__.py` for a package)."""
        if plugin_filename.startswith(GH_PREFIX):
            raise PluginError(f"cannot update plugin {plugin_filename}: it is fetched from the "
                              "plugin repository")
        path = self.confine(plugin_filename)
        rel = plugin_filename.rstrip("/")
        if path.is_dir():
            rel = f"{rel}/__init__.py"
        return self.write_file(rel, content)

    def replace_directory(self, plugin_filename: str, files: list[tuple[str, str]]) -> Path:
        """Atomically replace a package plugin's directory with `files` (relative path,
        content): written to `<dir>.tmp`, swapped in, the old one removed."""
        if plugin_filename.startswith(GH_PREFIX):
            raise PluginError(f"cannot update plugin {plugin_filename}: it is fetched from the "
                              "plugin repository")
        target = self.confine(plugin_filename)
        if target == self.plugin_dir:
            raise _traversal(plugin_filename)
        if not any(PurePosixPath(rel).as_posix() == "__init__.py" for rel, _ in files):
            raise PluginError(f"Multi-file plugin directory must contain __init__.py: {target}")
        tmp = target.with_name(target.name + ".tmp")
        old = target.with_name(target.name + ".old")
        for stale in (tmp, old):
            if stale.exists():
                shutil.rmtree(stale)
        tmp.mkdir(parents=True)
        try:
            for rel, content in files:
                dest = (tmp / rel).resolve()
                if tmp.resolve() not in dest.parents:
                    raise _traversal(rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(content, encoding="utf-8")
            if target.exists():
                target.rename(old)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not target.exists():
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return target


def python_files(root: Path) -> list[Path]:
    """Every `.py` file under `root`, skipping `__pycache__`."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        out.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return out


def check_entry_point(ref: PluginRef, kind: str) -> None:
    """Refuse a trigger whose plugin certainly lacks the entry point of its kind.

    The check reads the code without running it (module-level code may have side
    effects). A plugin whose source cannot be parsed is refused with the syntax
    error; when the name could be bound dynamically (star imports, module
    `__getattr__`, `globals()`), the plugin gets the benefit of the doubt.
    """
    source = ref.source_for_check()
    if source is None:
        return
    fn = ENTRY_POINTS[kind]
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        where = f" (line {e.lineno})" if e.lineno else ""
        raise PluginError(f"plugin {ref.name} cannot be compiled: "
                          f"{type(e).__name__}: {e.msg}{where}") from None
    bound = _top_level_names(tree)
    if fn in bound or "*" in bound or "__getattr__" in bound or _uses_globals(tree):
        return
    defined = [name for k, name in ENTRY_POINTS.items() if name in bound and k != kind]
    hint = (f" (it defines {', '.join(defined)}, which serves a different trigger type)"
            if defined else "")
    raise PluginError(f"{missing_entry_point_message(kind)}{hint}")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def visit(stmts: list[ast.stmt]) -> None:
        for node in stmts:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            names.add(n.id)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []) or [])
                for h in getattr(node, "handlers", []) or []:
                    visit(h.body)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.NamedExpr):
                names.add(node.value.target.id)

    visit(tree.body)
    return names


def _uses_globals(tree: ast.Module) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and \
                n.func.id in ("globals", "exec", "setattr"):
            return True
    return False
