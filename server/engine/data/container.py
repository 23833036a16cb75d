"""Files inside a folder or a zip archive, read into memory (a zip is never extracted to disk).

A zip is checked before anything is read from it: entries with absolute paths or '..' (zip-slip)
are refused, and the entry count and total uncompressed size are bounded. macOS metadata
(__MACOSX) and dotfiles are skipped.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path, PurePosixPath

from .errors import DataError

MAX_ENTRIES = 200_000
MAX_TOTAL_BYTES = 2 * 1024**3


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class Container:
    """A read-only view of named files: `names` are relative posix paths, sorted."""

    def __init__(self, path: Path):
        self.path = path
        self.display = path.name or str(path)
        self.names: list[str] = []

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def where(self, name: str) -> str:
        """How an error message names one file of the container."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Folder(Container):
    def __init__(self, path: Path):
        super().__init__(path)
        names = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not _hidden((d,)))
            rel = Path(root).relative_to(path)
            for f in files:
                if _hidden((f,)):
                    continue
                names.append((rel / f).as_posix())
                if len(names) > MAX_ENTRIES:
                    raise DataError(
                        f"{self.display}: more than {MAX_ENTRIES:,} files; "
                        "expected at most that many"
                    )
        self.names = sorted(names)

    def read(self, name: str) -> bytes:
        try:
            return (self.path / name).read_bytes()
        except OSError as e:
            raise DataError(f"{self.where(name)}: cannot be read ({e.strerror or e})") from e

    def where(self, name: str) -> str:
        return f"{self.display}/{name}"


class Zip(Container):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            hint = ""
            if path.name.lower().endswith((".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")):
                hint = "; extract it, or pack the files as a .zip"
            raise DataError(f"{self.display} is not a readable zip archive ({e}){hint}") from e
        infos = self._zip.infolist()
        if len(infos) > MAX_ENTRIES:
            self.close()
            raise DataError(
                f"{self.display} has {len(infos):,} entries; expected at most {MAX_ENTRIES:,}"
            )
        total = 0
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if _unsafe(name):
                self.close()
                raise DataError(
                    f"{self.display}: entry {name!r} has an absolute path or '..'; expected "
                    "paths inside the archive (refusing to read it)"
                )
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                self.close()
                raise DataError(
                    f"{self.display} unpacks to more than {MAX_TOTAL_BYTES // 1024**3} GB "
                    f"(at entry {name!r}); expected at most that much"
                )
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if info.is_dir() or not parts or _hidden(parts):
                continue
            self._infos[PurePosixPath(*parts).as_posix()] = info
        self.names = sorted(self._infos)

    def read(self, name: str) -> bytes:
        try:
            return self._zip.read(self._infos[name])
        except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError) as e:
            # RuntimeError: encrypted entry; BadZipFile: CRC mismatch; others: damaged data
            raise DataError(f"{self.where(name)} cannot be read ({e})") from e

    def where(self, name: str) -> str:
        return f"{self.display} entry {name!r}"

    def close(self) -> None:
        self._zip.close()


def _unsafe(name: str) -> bool:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in name.replace("\\", "/").split("/")


def open_container(path: Path) -> Container:
    return Folder(path) if path.is_dir() else Zip(path)


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]
