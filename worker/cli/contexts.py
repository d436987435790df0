"""Contexts: named servers in the client's config file, as docker has them.

``$XDG_CONFIG_HOME/worker/config.toml`` (else ``~/.config/worker/``, or the
file ``WORKER_CONFIG`` names)::

    current = "local"

    [contexts.local]
    url = "https://127.0.0.1:8443"
    ca = "~/.worker/ca.pem"
    user = "alice"
    password_command = "pass show worker/alice"   # or: password_env = "VAR"

A plain ``password`` is refused unless the context also says
``allow_plain_password = true``; a ``password_command`` is run only from a
file that nobody else may write. The file is read only when it exists.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping

from worker.cli.environment import config_path
from worker.errors import ConfigError, UsageError

FIELDS = frozenset(
    {"url", "ca", "user", "password_command", "password_env", "password", "allow_plain_password"}
)


class Context:
    """One named server. (Plain classes here: this module is read by every
    client command of someone who has a config file.)"""

    def __init__(  # noqa: PLR0917 - as the file lists them
        self,
        name: str,
        url: str | None,
        ca: str | None,
        user: str | None,
        password_command: str | None,
        password_env: str | None,
        password: str | None,  # only with allow_plain_password
    ) -> None:
        self.name, self.url, self.ca, self.user = name, url, ca, user
        self.password_command, self.password_env = password_command, password_env
        self.password = password

    @property
    def password_source(self) -> str:
        if self.password_command:
            return "command"
        if self.password_env:
            return f"${self.password_env}"
        return "plain" if self.password is not None else "-"


class ClientFile:
    def __init__(
        self, path: str, current: str | None, contexts: dict[str, Context], private: bool
    ) -> None:
        self.path = path
        self.current = current
        self.contexts = contexts
        self.private = private  # nobody but its owner (or root) may write it

    def get(self, name: str) -> Context:
        try:
            return self.contexts[name]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise UsageError(f"no context {name!r} in {self.path} (there: {known})") from None


def load(environ: Mapping[str, str]) -> ClientFile | None:
    """The config file, or None if there is none."""
    path = config_path(environ)
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    import tomllib

    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    private = info.st_uid in (0, os.getuid()) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    found = _contexts(document, path, environ.get("HOME"))
    return ClientFile(path, _text(document, "current", path), found, private)


def _text(table: dict[str, object], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _contexts(document: dict[str, object], path: str, home: str | None) -> dict[str, Context]:
    tables = document.get("contexts", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: [contexts] must be a table of tables")
    found = {}
    for name, table in tables.items():
        where = f"{path}: [contexts.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(table) - FIELDS)
        if unknown:
            known = ", ".join(sorted(FIELDS))
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {known}")
        plain = _text(table, "password", where)
        if plain is not None and table.get("allow_plain_password") is not True:
            raise ConfigError(
                f"{where}: a plain password is refused; use password_command or password_env "
                "(or add allow_plain_password = true)"
            )
        ca = _text(table, "ca", where)
        found[name] = Context(
            name,
            _text(table, "url", where),
            _expand(ca, home),
            _text(table, "user", where),
            _text(table, "password_command", where),
            _text(table, "password_env", where),
            plain,
        )
    return found


def _expand(path: str | None, home: str | None) -> str | None:
    if path and home and (path == "~" or path.startswith("~/")):
        return home + path[1:]
    return path


def password_of(context: Context, file: ClientFile, environ: Mapping[str, str]) -> str:
    """The context's password, from its command, its variable or itself."""
    if context.password_command:
        import subprocess

        if not file.private:
            raise ConfigError(
                f"not running password_command of context {context.name!r}: {file.path} may be "
                "written by others (chmod go-w it)"
            )
        done = subprocess.run(
            ["/bin/sh", "-c", context.password_command],
            stdout=subprocess.PIPE,
            check=False,
            env=dict(environ),
        )
        if done.returncode != 0:
            raise ConfigError(
                f"password_command of context {context.name!r} failed (exit {done.returncode})"
            )
        return done.stdout.decode("utf-8", "surrogateescape").removesuffix("\n")
    if context.password_env:
        value = environ.get(context.password_env)
        if value is None:
            raise ConfigError(
                f"context {context.name!r} takes its password from ${context.password_env}, "
                "which is not set"
            )
        return value
    if context.password is not None:
        return context.password
    raise ConfigError(
        f"context {context.name!r} names a user but no password_command or password_env"
    )


def use(environ: Mapping[str, str], name: str) -> str:
    """Make ``name`` the current context, editing only the ``current`` line
    of the file (its comments and layout are kept); return the file's path."""
    file = load(environ)
    if file is None:
        raise UsageError(
            f"no client config at {config_path(environ)}: add a [contexts.{name}] table there first"
        )
    file.get(name)
    with open(file.path, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    setting = f"current = {_quoted(name)}\n"
    for index, line in enumerate(lines):
        if line.lstrip().startswith("["):
            lines.insert(index, setting)  # before the first table: a top-level key
            break
        if re.match(r"\s*current\s*=", line):
            lines[index] = setting
            break
    else:
        lines.append(setting)
    temporary = f"{file.path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    os.chmod(temporary, stat.S_IMODE(os.stat(file.path).st_mode))
    os.replace(temporary, file.path)
    return file.path


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
