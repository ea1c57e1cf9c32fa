"""Editing a Postgres data directory's configuration: one managed block at the end of
postgresql.conf (rewritten on every `up`, the rest of the file untouched) and removal of
ALTER SYSTEM values (postgresql.auto.conf) that would override it."""

from pathlib import Path

BLOCK_BEGIN = "# >>> devstack: managed block, rewritten by `python -m devstack up` >>>"
BLOCK_END = "# <<< devstack <<<"


def quote(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


def _strip_block(text: str) -> str:
    kept, inside = [], False
    for line in text.splitlines():
        if line == BLOCK_BEGIN:
            inside = True
        elif line == BLOCK_END:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def write_managed_block(conf: Path, settings: dict[str, str]) -> bool:
    """Replace our block at the end of a postgresql.conf; True when the file changed."""
    old = conf.read_text()
    lines = [BLOCK_BEGIN, *(f"{name} = {value}" for name, value in settings.items()), BLOCK_END]
    new = _strip_block(old) + "\n" + "\n".join(lines) + "\n"
    if new == old:
        return False
    conf.write_text(new)
    return True


def drop_auto_setting(auto_conf: Path, name: str) -> bool:
    """Remove an ALTER SYSTEM value so that the managed block's value applies again; True when
    the file changed."""
    if not auto_conf.exists():
        return False
    lines = auto_conf.read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0].strip() != name]
    if kept == lines:
        return False
    auto_conf.write_text("\n".join(kept) + "\n")
    return True


def write_if_changed(path: Path, text: str) -> bool:
    """Write a whole file (pg_hba.conf) when its content differs; True when it changed."""
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
