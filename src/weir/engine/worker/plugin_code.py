"""Loading a plugin's code inside the worker and finding its entry point.

* A single file (or `gh:` source) is compiled once per change of its modification
  time, then executed **in fresh module globals on every call**, as the reference
  does; it is compiled with the file name ``<string>`` like the reference, and its
  source is registered with `linecache` so tracebacks show the lines.
* A package directory (with `__init__.py`) is imported once under its directory
  name, so relative and absolute imports of its own modules work, and re-imported
  when any of its `.py` files changes (the reference never reloads packages).
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
import linecache
import os
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from weir.engine.plugin_api import missing_entry_point_message

CODE_FILENAME = "<string>"


class PluginLoadError(Exception):
    """The plugin cannot be loaded; the message is shown as is."""


class PluginCode:
    """One plugin (as the server resolved it) and the way to get its entry point."""

    def __init__(self, ref: dict[str, Any], *, unique_module_name: bool = False) -> None:
        self.kind: str = ref["kind"]
        self.name: str = ref["name"]
        self.path = Path(ref["path"]) if ref.get("path") else None
        self._source: str | None = ref.get("code")
        self._code: types.CodeType | None = None
        self._mtime: int | None = None
        self._module: types.ModuleType | None = None
        self._module_name: str | None = None
        self._signature: tuple[Any, ...] | None = None
        self._unique = unique_module_name
        self._chosen_name: str | None = None
        self._lock = threading.Lock()

    def function(self, kind: str, entry: str) -> Callable[..., Any]:
        """The entry point, ready to call (runs module code for single files)."""
        if self.kind == "package":
            with self._lock:
                module = self._package_module()
            fn = getattr(module, entry, None)
        else:
            with self._lock:
                code = self._single_file_code()
            module = types.ModuleType(_module_stem(self.name))
            module.__dict__["__builtins__"] = builtins
            exec(code, module.__dict__)
            fn = module.__dict__.get(entry)
        if fn is None or not callable(fn):
            raise PluginLoadError(missing_entry_point_message(kind))
        entry_point: Callable[..., Any] = fn
        return entry_point

    # ---- single files ----------------------------------------------------------------

    def _single_file_code(self) -> types.CodeType:
        if self.kind == "source":
            if self._code is None:
                self._code = _compile(self._source or "")
            _remember_source(self._source or "")
            return self._code
        assert self.path is not None
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            if self._code is None:
                raise PluginLoadError(
                    f"reading plugin file: Plugin not found: {self.path}") from None
            return self._code  # keep the last good code (the reference does the same)
        if self._code is None or mtime != self._mtime:
            try:
                source = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                if self._code is None:
                    raise PluginLoadError(f"reading plugin file: {e}") from None
                return self._code
            self._code = _compile(source)  # a SyntaxError surfaces on this call
            self._source = source
            self._mtime = mtime
        _remember_source(self._source or "")
        return self._code

    # ---- packages --------------------------------------------------------------------

    def _package_module(self) -> types.ModuleType:
        assert self.path is not None
        signature = _tree_signature(self.path)
        if self._module is not None and signature == self._signature:
            return self._module
        self._unload()
        name = self._choose_module_name()
        init = self.path / "__init__.py"
        if not init.is_file():
            raise PluginLoadError(
                f"reading plugin file: Multi-file plugin directory must contain __init__.py: "
                f"{self.path}")
        parent = str(self.path.parent)
        if parent not in sys.path:
            sys.path.append(parent)  # lowest priority: for imports of sibling modules
        importlib.invalidate_caches()
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(self.path)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as e:
            _drop_modules(name)
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            raise PluginLoadError(
                f"Failed to import plugin module '{self.path.name}': {describe_exception(e)}\n"
                "Hint: Check for syntax errors or missing dependencies in Python files."
            ) from e
        self._module = module
        self._module_name = name
        self._signature = signature
        return module

    def _choose_module_name(self) -> str:
        """The directory's name, unless it would shadow (or be shadowed by) another
        module; chosen once, so re-imports keep the name."""
        if self._chosen_name is not None:
            return self._chosen_name
        assert self.path is not None
        base = self.path.name
        try:
            found = importlib.util.find_spec(base)
            taken = base in sys.modules or (
                found is not None and Path(found.origin or "").parent != self.path)
        except (ImportError, ValueError):
            taken = True
        if not self._unique and base.isidentifier() and not taken:
            self._chosen_name = base
        else:
            digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:12]
            safe = "".join(c if c.isalnum() else "_" for c in base)
            self._chosen_name = f"_weir_plugin_{safe}_{digest}"
        return self._chosen_name

    def _unload(self) -> None:
        if self._module_name is not None:
            _drop_modules(self._module_name)
        self._module = None
        self._module_name = None


def describe_exception(e: BaseException) -> str:
    """`<ExcType>: <message>` (just the type when the message is empty)."""
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _compile(source: str) -> types.CodeType:
    return compile(source, CODE_FILENAME, "exec", dont_inherit=True)


def _remember_source(source: str) -> None:
    linecache.cache[CODE_FILENAME] = (len(source), None, source.splitlines(True),
                                      CODE_FILENAME)


def _module_stem(name: str) -> str:
    stem = name.rstrip("/").rsplit("/", 1)[-1]
    stem = stem.removesuffix(".py")
    return stem or "plugin"


def _drop_modules(name: str) -> None:
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]


def _tree_signature(root: Path) -> tuple[Any, ...]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                entries.append((p, st.st_mtime_ns, st.st_size))
    return tuple(entries)
