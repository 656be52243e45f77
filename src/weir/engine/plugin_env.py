"""What a plugin worker's environment holds.

InfluxDB 3 runs plugins inside the server process, so `os.getenv` in a plugin sees what the
server was started with, and real plugins read their credentials that way (`NORI_API_KEY`,
`TWILIO_TOKEN`, `INFLUXDB3_AUTH_TOKEN` to call back into the server). Weir's workers are
separate processes; each gets the server's environment, as it is when the worker starts,
except:

* the variables the server reads to configure itself: the environment variable of every
  `serve` option (object-store keys, the admin token file, TLS keys, the data dir, ...),
  which the CLI derives from the options themselves into `ServeConfig.server_env_vars`;
* `PYTHONHOME` and `PYTHONPATH`, which point the server's interpreter at its own library
  and would point the worker's (the plugin venv's, perhaps another Python) at the wrong one,
  and coverage's `COVERAGE_PROCESS_START`/`COVERAGE_PROCESS_CONFIG` (`INTERPRETER`);
* with `--plugin-env-allow`, every name that matches none of its patterns, save the
  `MINIMUM` a Python process needs to run (`PATH`, `HOME`, locale, TLS roots, proxies);
* every name that matches a `--plugin-env-deny` pattern (deny wins over everything).

A name given exactly (not as a pattern) in `--plugin-env-allow`, or in the older
`WEIR_PLUGIN_ENV=NAME,NAME2`, is handed over even when the server reads it itself: that is
an operator's deliberate act. Patterns are shell globs (`TWILIO_*`), matched case-sensitively.
The engine then sets `TZ=UTC`, `PLUGIN_DIR`/`INFLUXDB3_PLUGIN_DIR` and the venv's
`VIRTUAL_ENV`/`PATH` on top.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from weir.config import ServeConfig

#: kept with --plugin-env-allow whatever it names: what a Python process (and pip, requests,
#: urllib) needs to run as the server's user does
MINIMUM: tuple[str, ...] = (
    "PATH", "HOME", "LANG", "LANGUAGE", "LC_*", "TMPDIR", "USER", "LOGNAME",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "HF_HOME",
    "PIP_INDEX_URL", "PIP_FIND_LINKS", "http_proxy", "https_proxy", "no_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")

#: the server's interpreter's own, never inherited (unless handed over by exact name): where
#: its library is, and coverage's "measure this process" (a worker would trace every call
#: and, ending with os._exit, never save what it measured)
INTERPRETER: frozenset[str] = frozenset({"PYTHONHOME", "PYTHONPATH", "COVERAGE_PROCESS_START",
                                         "COVERAGE_PROCESS_CONFIG"})

#: names listed here are handed to plugins (the form before --plugin-env-allow; still read)
HANDOVER_VAR = "WEIR_PLUGIN_ENV"

_GLOB = re.compile(r"[*?\[]")


def split_names(values: Iterable[str]) -> tuple[str, ...]:
    """`["A,B", " C "]` -> `("A", "B", "C")`: each value split on commas, blanks dropped."""
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def is_pattern(name: str) -> bool:
    return _GLOB.search(name) is not None


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class PluginEnvPolicy:
    """Which of the server's environment variables a plugin worker inherits."""

    #: what the server reads itself (the environment variables of `serve`'s options)
    server_vars: frozenset[str] = frozenset()
    #: None: everything not withheld; else only names matching these (plus MINIMUM)
    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    #: handed over by exact name even if withheld (the exact names of `allow`)
    exact: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, config: ServeConfig) -> PluginEnvPolicy:
        allow = (split_names(config.plugin_env_allow)
                 if config.plugin_env_allow is not None else None)
        return cls(server_vars=frozenset(config.server_env_vars), allow=allow,
                   deny=split_names(config.plugin_env_deny),
                   exact=frozenset(n for n in allow or () if not is_pattern(n)))

    def admits(self, name: str, handed: frozenset[str] = frozenset()) -> bool:
        """Whether a plugin sees `name` (`handed`: the names of WEIR_PLUGIN_ENV)."""
        if _matches(name, self.deny):
            return False
        explicit = name in self.exact or name in handed
        if (name in self.server_vars or name in INTERPRETER) and not explicit:
            return False
        if self.allow is None or explicit:
            return True
        return _matches(name, self.allow) or _matches(name, MINIMUM)

    def apply(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment a worker starts with, from the server's."""
        handed = frozenset(split_names([environ.get(HANDOVER_VAR, "")]))
        return {k: v for k, v in environ.items() if self.admits(k, handed)}

    def for_installs(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment of package installs (pip, uv): the server's, minus what the
        server reads itself and the deny list. A package's build runs any code it likes, so
        it must not see the server's credentials either; `allow` does not narrow it (pip
        needs its own settings: PIP_*, UV_*, proxies, certificates)."""
        return {k: v for k, v in environ.items()
                if k not in self.server_vars and k not in INTERPRETER
                and not _matches(k, self.deny)}

    def withheld(self, environ: Mapping[str, str]) -> list[str]:
        """The names set in `environ` that plugins do not see (for the start-up log)."""
        handed = frozenset(split_names([environ.get(HANDOVER_VAR, "")]))
        return sorted(k for k in environ if not self.admits(k, handed))
